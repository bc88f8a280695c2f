// See input_items.h. Parsed with Boost.JSON's default memory: the items outlive the request in
// the stores.
#include "tests/mock_aoai/input_items.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

absl::string_view View(json::string_view s) { return absl::string_view(s.data(), s.size()); }

json::value NewId(absl::string_view prefix) {
  std::string id(prefix);
  AppendRandomHex(id, 32);
  return json::value(json::string_view(id.data(), id.size()));
}

// The text a content (a string, or parts with "text") or a tool output contributes.
std::string CollectText(const json::value& content) {
  if (content.is_string()) {
    return std::string(View(content.get_string()));
  }
  std::string text;
  if (const json::array* parts = content.if_array()) {
    for (const json::value& part : *parts) {
      if (const json::object* object = part.if_object()) {
        if (const json::value* t = object->if_contains("text"); t != nullptr && t->is_string()) {
          absl::StrAppend(&text, View(t->get_string()));
        }
      }
    }
  }
  return text;
}

// A message item in the shape the lists show: id, type, status, role, content parts.
json::object MessageItem(const json::object& given, absl::string_view role,
                         const json::value* content) {
  json::object item;
  const json::value* id = given.if_contains("id");
  item["id"] = id != nullptr && id->is_string() ? json::value(id->get_string()) : NewId("msg_");
  item["type"] = "message";
  item["status"] = "completed";
  item["role"] = json::string_view(role.data(), role.size());
  if (content != nullptr && content->is_string()) {
    json::object part;
    part["type"] = role == "assistant" ? "output_text" : "input_text";
    part["text"] = content->get_string();
    if (role == "assistant") {
      part["annotations"] = json::array();
    }
    json::array parts;
    parts.emplace_back(std::move(part));
    item["content"] = std::move(parts);
  } else if (content != nullptr && content->is_array()) {
    item["content"] = content->get_array();
  } else {
    item["content"] = json::array();
  }
  return item;
}

}  // namespace

std::optional<OpenAiError> ParseInputItems(const json::value& input, absl::string_view param,
                                           bool allow_string, InputItems& out) {
  if (allow_string && input.is_string()) {
    out.items.push_back(MessageItem(json::object(), "user", &input));
    out.texts.emplace_back(View(input.get_string()));
    return std::nullopt;
  }
  if (!input.is_array()) {
    return InvalidType(param, allow_string ? "one of a string or array of input items" : "an array",
                       input);
  }
  const json::array& items = input.get_array();
  out.items.reserve(out.items.size() + items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string at = absl::StrCat(param, "[", i, "]");
    const json::object* item = items[i].if_object();
    if (item == nullptr) {
      return InvalidType(at, "an object", items[i]);
    }
    const json::value* type = item->if_contains("type");
    if (type != nullptr && !type->is_string()) {
      return InvalidType(absl::StrCat(at, ".type"), "a string", *type);
    }
    if (type == nullptr || type->get_string() == "message") {
      const json::value* role = item->if_contains("role");
      if (role == nullptr || !role->is_string()) {
        return MissingParameter(absl::StrCat(at, ".role"));
      }
      const json::value* content = item->if_contains("content");
      out.items.push_back(MessageItem(*item, View(role->get_string()), content));
      out.texts.push_back(content != nullptr ? CollectText(*content) : std::string());
      continue;
    }
    // Tool outputs, function calls, references...: kept as given, with an id.
    json::object copy = *item;
    if (!copy.contains("id")) {
      copy["id"] = NewId("item_");
    }
    if (const json::value* output = item->if_contains("output"); output != nullptr) {
      out.texts.push_back(CollectText(*output));
    } else if (const json::value* arguments = item->if_contains("arguments");
               arguments != nullptr && arguments->is_string()) {
      out.texts.emplace_back(View(arguments->get_string()));
    } else {
      out.texts.push_back(json::serialize(*item));
    }
    out.items.push_back(std::move(copy));
  }
  return std::nullopt;
}

}  // namespace spillway::mock
