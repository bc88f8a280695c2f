// Reflection-driven YAML <-> protobuf conversion (yaml-cpp keeps line/column marks, which
// is why it is used instead of a YAML->JSON->proto detour that would lose them).
#include "common/proto_yaml.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_json.h"
#include "spillway/v1/options.pb.h"

namespace spillway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class YamlReader {
 public:
  explicit YamlReader(absl::string_view source) : source_(source) {}

  absl::Status ReadMessage(const YAML::Node& node, const std::string& path, Message* message) {
    const Descriptor* descriptor = message->GetDescriptor();
    if (node.IsNull()) {
      return absl::OkStatus();  // `auth:` with nothing after it: an empty message
    }
    if (!node.IsMap()) {
      return Error(node, path,
                   absl::StrCat("expected a mapping of ", descriptor->name(), " fields, found ",
                                KindName(node)));
    }
    std::set<int> seen_fields;
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const FieldDescriptor* field = FindField(descriptor, key);
      const std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
      if (field == nullptr) {
        return Error(entry.first, field_path,
                     absl::StrCat("unknown field '", key, "' in ", descriptor->name(),
                                  " (known: ", KnownFields(descriptor), ")"));
      }
      if (!seen_fields.insert(field->number()).second) {
        return Error(entry.first, field_path, "duplicate key");
      }
      if (const auto* oneof = field->real_containing_oneof(); oneof != nullptr) {
        for (int i = 0; i < oneof->field_count(); ++i) {
          const FieldDescriptor* sibling = oneof->field(i);
          if (sibling != field && seen_fields.count(sibling->number()) > 0) {
            return Error(entry.first, field_path,
                         absl::StrCat("only one of ", OneofMembers(oneof), " may be set"));
          }
        }
      }
      absl::Status status = ReadField(entry.second, field_path, field, message);
      if (!status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status ReadField(const YAML::Node& node, const std::string& path,
                         const FieldDescriptor* field, Message* message) {
    if (field->is_map()) {
      return Error(node, path, "map fields are not supported in YAML");
    }
    if (!field->is_repeated()) {
      return ReadValue(node, path, field, message, /*repeated=*/false);
    }
    if (node.IsNull()) {
      return absl::OkStatus();
    }
    if (!node.IsSequence()) {
      return Error(node, path, absl::StrCat("expected a list, found ", KindName(node)));
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      absl::Status status =
          ReadValue(node[i], absl::StrCat(path, "[", i, "]"), field, message, /*repeated=*/true);
      if (!status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }

  absl::Status ReadValue(const YAML::Node& node, const std::string& path,
                         const FieldDescriptor* field, Message* message, bool repeated) {
    const Reflection* reflection = message->GetReflection();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* child = repeated ? reflection->AddMessage(message, field)
                                : reflection->MutableMessage(message, field);
      return ReadMessage(node, path, child);
    }
    if (!node.IsScalar()) {
      return Error(node, path,
                   absl::StrCat("expected a ", TypeName(field), ", found ", KindName(node)));
    }
    const std::string& text = node.Scalar();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        repeated ? reflection->AddString(message, field, text)
                 : reflection->SetString(message, field, text);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL: {
        bool value = false;
        if (!YAML::convert<bool>::decode(node, value)) {
          return Error(node, path, absl::StrCat("expected true or false, found '", text, "'"));
        }
        repeated ? reflection->AddBool(message, field, value)
                 : reflection->SetBool(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumValueDescriptor* value = FindEnumValue(field->enum_type(), text);
        if (value == nullptr) {
          return Error(node, path,
                       absl::StrCat("unknown value '", text, "' (expected one of ",
                                    EnumSpellings(field->enum_type()), ")"));
        }
        repeated ? reflection->AddEnum(message, field, value)
                 : reflection->SetEnum(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double value = 0;
        if (!absl::SimpleAtod(text, &value)) {
          return Error(node, path, absl::StrCat("expected a number, found '", text, "'"));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          repeated ? reflection->AddDouble(message, field, value)
                   : reflection->SetDouble(message, field, value);
        } else {
          repeated ? reflection->AddFloat(message, field, static_cast<float>(value))
                   : reflection->SetFloat(message, field, static_cast<float>(value));
        }
        return absl::OkStatus();
      }
      default:
        return ReadInteger(node, path, field, message, repeated);
    }
  }

  absl::Status ReadInteger(const YAML::Node& node, const std::string& path,
                           const FieldDescriptor* field, Message* message, bool repeated) {
    const Reflection* reflection = message->GetReflection();
    const std::string& text = node.Scalar();
    const bool is_unsigned = field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                             field->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
    const bool is_32 = field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                       field->cpp_type() == FieldDescriptor::CPPTYPE_INT32;
    std::string digits = text;
    digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());  // 120_000
    if (is_unsigned) {
      uint64_t value = 0;
      if (!absl::SimpleAtoi(digits, &value) ||
          (is_32 && value > std::numeric_limits<uint32_t>::max())) {
        return Error(node, path,
                     absl::StrCat("expected a non-negative integer", is_32 ? " below 2^32" : "",
                                  ", found '", text, "'"));
      }
      if (is_32) {
        repeated ? reflection->AddUInt32(message, field, static_cast<uint32_t>(value))
                 : reflection->SetUInt32(message, field, static_cast<uint32_t>(value));
      } else {
        repeated ? reflection->AddUInt64(message, field, value)
                 : reflection->SetUInt64(message, field, value);
      }
      return absl::OkStatus();
    }
    int64_t value = 0;
    if (!absl::SimpleAtoi(digits, &value) ||
        (is_32 && (value > std::numeric_limits<int32_t>::max() ||
                   value < std::numeric_limits<int32_t>::min()))) {
      return Error(node, path, absl::StrCat("expected an integer, found '", text, "'"));
    }
    if (is_32) {
      repeated ? reflection->AddInt32(message, field, static_cast<int32_t>(value))
               : reflection->SetInt32(message, field, static_cast<int32_t>(value));
    } else {
      repeated ? reflection->AddInt64(message, field, value)
               : reflection->SetInt64(message, field, value);
    }
    return absl::OkStatus();
  }

  static const FieldDescriptor* FindField(const Descriptor* descriptor, const std::string& key) {
    if (const FieldDescriptor* field = descriptor->FindFieldByName(key); field != nullptr) {
      return field;
    }
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor* field = descriptor->field(i);
      const auto& options = field->options();
      for (int a = 0; a < options.ExtensionSize(v1::yaml_alias); ++a) {
        if (options.GetExtension(v1::yaml_alias, a) == key) {
          return field;
        }
      }
    }
    return nullptr;
  }

  static const EnumValueDescriptor* FindEnumValue(const EnumDescriptor* type,
                                                  const std::string& text) {
    for (int i = 0; i < type->value_count(); ++i) {
      const EnumValueDescriptor* value = type->value(i);
      const std::string& yaml_name = value->options().GetExtension(v1::yaml_name);
      if ((!yaml_name.empty() && absl::EqualsIgnoreCase(yaml_name, text)) ||
          (value->number() != 0 && absl::EqualsIgnoreCase(value->name(), text))) {
        return value;
      }
    }
    return nullptr;
  }

  static std::string EnumSpellings(const EnumDescriptor* type) {
    std::vector<std::string> names;
    for (int i = 0; i < type->value_count(); ++i) {
      const std::string& yaml_name = type->value(i)->options().GetExtension(v1::yaml_name);
      if (!yaml_name.empty()) {
        names.push_back(yaml_name);
      }
    }
    return absl::StrJoin(names, ", ");
  }

  static std::string KnownFields(const Descriptor* descriptor) {
    std::vector<std::string> names;
    for (int i = 0; i < descriptor->field_count(); ++i) {
      names.push_back(descriptor->field(i)->name());
    }
    return absl::StrJoin(names, ", ");
  }

  static std::string OneofMembers(const google::protobuf::OneofDescriptor* oneof) {
    std::vector<std::string> names;
    for (int i = 0; i < oneof->field_count(); ++i) {
      names.push_back(oneof->field(i)->name());
    }
    return absl::StrJoin(names, ", ");
  }

  static std::string TypeName(const FieldDescriptor* field) {
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        return "string";
      case FieldDescriptor::CPPTYPE_BOOL:
        return "boolean";
      case FieldDescriptor::CPPTYPE_ENUM:
        return "name";
      default:
        return "number";
    }
  }

  static std::string KindName(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Null:
        return "nothing";
      default:
        return absl::StrCat("'", node.Scalar(), "'");
    }
  }

  absl::Status Error(const YAML::Node& node, const std::string& path,
                     const std::string& problem) const {
    const YAML::Mark mark = node.Mark();
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", mark.line + 1, ":", mark.column + 1, ": ", path, ": ", problem));
  }

  std::string source_;
};

// The YAML twin of a JSON value: proto_json.cc already walked the message.
YAML::Node JsonToNode(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::object: {
      YAML::Node node(YAML::NodeType::Map);
      for (const auto& [key, member] : value.get_object()) {
        node[std::string(key)] = JsonToNode(member);
      }
      return node;
    }
    case boost::json::kind::array: {
      YAML::Node node(YAML::NodeType::Sequence);
      for (const boost::json::value& element : value.get_array()) {
        node.push_back(JsonToNode(element));
      }
      return node;
    }
    case boost::json::kind::string:
      return YAML::Node(std::string(value.get_string()));
    case boost::json::kind::bool_:
      return YAML::Node(value.get_bool());
    case boost::json::kind::int64:
      return YAML::Node(value.get_int64());
    case boost::json::kind::uint64:
      return YAML::Node(value.get_uint64());
    case boost::json::kind::double_:
      return YAML::Node(value.get_double());
    case boost::json::kind::null:
      break;
  }
  return YAML::Node();
}

// Whether a '[', '{' or quote after `previous` (the last non-blank character on its line,
// '\n' when none) starts a flow collection or a quoted scalar rather than sits inside a plain
// scalar such as `a[1]` or `don't`.
bool StartsToken(char previous) {
  return previous == '\n' || previous == ':' || previous == '-' || previous == '?' ||
         previous == ',' || previous == '[' || previous == '{';
}

// Where the innermost '[' or '{' still open at byte `end` of `text` was opened, or nothing.
// Enough of YAML's lexical rules to skip brackets in comments and quoted scalars.
std::optional<YAML::Mark> UnclosedFlowOpener(absl::string_view text, std::size_t end) {
  std::vector<YAML::Mark> open;
  YAML::Mark here;
  char quote = 0;
  bool comment = false;
  char previous = '\n';
  for (std::size_t i = 0; i < std::min(end, text.size()); ++i, ++here.pos, ++here.column) {
    const char c = text[i];
    if (c == '\n') {
      comment = false;
      previous = '\n';
      ++here.line;
      here.column = -1;  // the loop's increment makes it 0
      continue;
    }
    if (comment || c == ' ' || c == '\t') {
      continue;
    }
    const char next = i + 1 < text.size() ? text[i + 1] : '\n';
    if (quote != 0) {
      if (c == quote && (quote == '"' || next != '\'')) {
        quote = 0;
      } else if (((quote == '"' && c == '\\') || (quote == '\'' && c == '\'')) && next != '\n') {
        ++i, ++here.pos, ++here.column;  // an escape: \x in double quotes, '' in single
      }
    } else if (c == '#' && (i == 0 || absl::ascii_isspace(text[i - 1]))) {
      comment = true;
    } else if ((c == '"' || c == '\'') && StartsToken(previous)) {
      quote = c;
    } else if ((c == '[' || c == '{') && (StartsToken(previous) || !open.empty())) {
      open.push_back(here);
    } else if ((c == ']' || c == '}') && !open.empty()) {
      open.pop_back();
    }
    previous = c;
  }
  if (open.empty()) {
    return std::nullopt;
  }
  return open.back();
}

// yaml-cpp notices an unclosed '[' or '{' only where the next token does not fit, often lines
// later; the error then points at the bracket and says where the parser noticed.
absl::Status SyntaxError(absl::string_view text, absl::string_view source,
                         const YAML::Exception& e) {
  if (e.msg == YAML::ErrorMsg::END_OF_SEQ_FLOW || e.msg == YAML::ErrorMsg::END_OF_MAP_FLOW) {
    if (std::optional<YAML::Mark> opener =
            UnclosedFlowOpener(text, static_cast<std::size_t>(e.mark.pos));
        opener.has_value() && opener->line != e.mark.line) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", opener->line + 1, ":", opener->column + 1, ": this '",
                       text.substr(static_cast<std::size_t>(opener->pos), 1), "' is not closed (",
                       e.msg, ", noticed at line ", e.mark.line + 1, ")"));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
}

}  // namespace

absl::Status ParseYamlInto(absl::string_view text, absl::string_view source_name,
                           Message* message) {
  message->Clear();
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return SyntaxError(text, source_name, e);
  }
  YamlReader reader(source_name);
  try {
    return reader.ReadMessage(root, "", message);
  } catch (const YAML::Exception& e) {  // e.g. a non-scalar key
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

const std::string& EnumYamlName(const EnumValueDescriptor* value) {
  const std::string& yaml_name = value->options().GetExtension(v1::yaml_name);
  return yaml_name.empty() ? value->name() : yaml_name;
}

std::string MessageToYaml(const Message& message) {
  YAML::Emitter out;
  out << JsonToNode(MessageToJsonValue(message));
  return std::string(out.c_str()) + "\n";
}

}  // namespace spillway
