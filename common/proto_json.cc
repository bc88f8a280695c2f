// See proto_json.h. The reflection walk here also feeds MessageToYaml, so the two output
// formats cannot drift apart.
#include "common/proto_json.h"

#include <boost/json/serialize.hpp>

#include "common/proto_yaml.h"

namespace spillway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// One value of `field`: element `index` of a repeated field, or the singular value when -1.
boost::json::value FieldValue(const Message& message, const FieldDescriptor* field, int index) {
  const Reflection* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJsonValue(rep ? r->GetRepeatedMessage(message, field, index)
                                    : r->GetMessage(message, field));
    case FieldDescriptor::CPPTYPE_STRING:
      return boost::json::string(rep ? r->GetRepeatedString(message, field, index)
                                     : r->GetString(message, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field);
    case FieldDescriptor::CPPTYPE_ENUM:
      return boost::json::string(EnumYamlName(rep ? r->GetRepeatedEnum(message, field, index)
                                                  : r->GetEnum(message, field)));
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(message, field, index) : r->GetUInt32(message, field);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(message, field, index) : r->GetUInt64(message, field);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(message, field, index) : r->GetDouble(message, field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(message, field, index) : r->GetFloat(message, field);
  }
  return nullptr;
}

void AppendIndent(int depth, std::string& out) { out.append(2 * depth, ' '); }

// Objects and arrays one member per line; empty ones and scalars as Boost.JSON prints them.
void AppendIndented(const boost::json::value& value, int depth, std::string& out) {
  if (const boost::json::object* object = value.if_object(); object && !object->empty()) {
    out += "{\n";
    for (auto it = object->begin(); it != object->end(); ++it) {
      AppendIndent(depth + 1, out);
      out += boost::json::serialize(it->key());
      out += ": ";
      AppendIndented(it->value(), depth + 1, out);
      out += std::next(it) == object->end() ? "\n" : ",\n";
    }
    AppendIndent(depth, out);
    out += "}";
  } else if (const boost::json::array* array = value.if_array(); array && !array->empty()) {
    out += "[\n";
    for (auto it = array->begin(); it != array->end(); ++it) {
      AppendIndent(depth + 1, out);
      AppendIndented(*it, depth + 1, out);
      out += std::next(it) == array->end() ? "\n" : ",\n";
    }
    AppendIndent(depth, out);
    out += "]";
  } else {
    out += boost::json::serialize(value);
  }
}

}  // namespace

boost::json::value MessageToJsonValue(const Message& message) {
  boost::json::object object;
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (!field->is_repeated()) {
      object[field->name()] = FieldValue(message, field, -1);
      continue;
    }
    boost::json::array list;
    for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
      list.push_back(FieldValue(message, field, i));
    }
    object[field->name()] = std::move(list);
  }
  return object;
}

std::string MessageToJson(const Message& message) {
  std::string out;
  AppendIndented(MessageToJsonValue(message), 0, out);
  out += "\n";
  return out;
}

}  // namespace spillway
