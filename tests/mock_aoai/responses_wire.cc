// See responses_wire.h. Objects are built as Boost.JSON values in the field order the service
// uses, then serialized: these answers are rarer than completions and must be exactly right.
#include "tests/mock_aoai/responses_wire.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/completion.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

std::string OutputText(int64_t tokens) {
  std::string text;
  for (int64_t i = 0; i < tokens; ++i) {
    absl::StrAppend(&text, OutputToken(i));
  }
  return text;
}

json::object TextPart(absl::string_view text) {
  json::object part;
  part["type"] = "output_text";
  part["annotations"] = json::array();
  part["logprobs"] = json::array();
  part["text"] = Js(text);
  return part;
}

// The one output message; without content while it is being generated.
json::object MessageItem(const ResponseFacts& facts, bool done) {
  json::object item;
  item["id"] = Js(facts.message_id);
  item["type"] = "message";
  item["status"] = !done ? "in_progress" : facts.truncated ? "incomplete" : "completed";
  json::array content;
  if (done) {
    content.emplace_back(TextPart(OutputText(facts.output_tokens)));
  }
  item["content"] = std::move(content);
  item["role"] = "assistant";
  return item;
}

json::value OptionalString(const std::optional<std::string>& value) {
  return value.has_value() ? json::value(Js(*value)) : json::value(nullptr);
}

void AppendEvent(std::string& out, absl::string_view type, const json::object& data) {
  absl::StrAppend(&out, "event: ", type, "\ndata: ", json::serialize(data), "\n\n");
}

}  // namespace

json::object ResponseObject(const ResponseFacts& facts, ResponseStatus status,
                            int64_t completed_at) {
  const bool ended = status == ResponseStatus::kCompleted || status == ResponseStatus::kIncomplete;
  json::object object;
  object["id"] = Js(facts.id);
  object["object"] = "response";
  object["created_at"] = facts.created_at;
  object["status"] = Js(ResponseStatusName(status));
  object["background"] = facts.background;
  object["completed_at"] =
      status == ResponseStatus::kCompleted ? json::value(completed_at) : json::value(nullptr);
  object["conversation"] = facts.conversation_id.has_value()
                               ? json::value(json::object{{"id", Js(*facts.conversation_id)}})
                               : json::value(nullptr);
  object["error"] = nullptr;
  if (status == ResponseStatus::kIncomplete) {
    object["incomplete_details"] = json::object{{"reason", "max_output_tokens"}};
  } else {
    object["incomplete_details"] = nullptr;
  }
  object["instructions"] = OptionalString(facts.instructions);
  object["max_output_tokens"] = facts.max_output_tokens.has_value()
                                    ? json::value(*facts.max_output_tokens)
                                    : json::value(nullptr);
  object["model"] = Js(facts.model);
  json::array output;
  if (ended) {
    output.emplace_back(MessageItem(facts, true));
  }
  object["output"] = std::move(output);
  object["parallel_tool_calls"] = true;
  object["previous_response_id"] = OptionalString(facts.previous_response_id);
  object["reasoning"] = json::object{{"effort", nullptr}, {"summary", nullptr}};
  object["store"] = facts.store;
  object["temperature"] = 1;  // an integer: Boost.JSON would spell 1.0 as 1E0
  object["text"] = json::object{{"format", json::object{{"type", "text"}}}};
  object["tool_choice"] = "auto";
  object["tools"] = json::array();
  object["top_p"] = 1;  // an integer: Boost.JSON would spell 1.0 as 1E0
  object["truncation"] = "disabled";
  if (ended) {
    json::object usage;
    usage["input_tokens"] = facts.input_tokens;
    usage["input_tokens_details"] = json::object{{"cached_tokens", facts.cached_tokens}};
    usage["output_tokens"] = facts.output_tokens;
    usage["output_tokens_details"] = json::object{{"reasoning_tokens", 0}};
    usage["total_tokens"] = facts.input_tokens + facts.output_tokens;
    object["usage"] = std::move(usage);
  } else {
    object["usage"] = nullptr;
  }
  object["user"] = nullptr;
  object["metadata"] = json::object();
  return object;
}

json::object OutputMessageItem(const ResponseFacts& facts) { return MessageItem(facts, true); }

std::string DeletedObject(absl::string_view id) {
  json::object object;
  object["id"] = Js(id);
  object["object"] = "response";
  object["deleted"] = true;
  return json::serialize(object);
}

std::string InputItemsPage(const json::array& items, bool ascending, int64_t limit,
                           absl::string_view after) {
  const int64_t count = static_cast<int64_t>(items.size());
  auto at = [&](int64_t i) -> const json::value& {
    return items[static_cast<size_t>(ascending ? i : count - 1 - i)];
  };
  int64_t start = 0;
  if (!after.empty()) {
    for (int64_t i = 0; i < count; ++i) {
      const json::object* item = at(i).if_object();
      const json::value* id = item == nullptr ? nullptr : item->if_contains("id");
      if (id != nullptr && id->is_string() && id->get_string() == Js(after)) {
        start = i + 1;
        break;
      }
    }
  }
  json::array data;
  for (int64_t i = start; i < count && i < start + limit; ++i) {
    data.push_back(at(i));
  }
  auto id_of = [](const json::value& item) -> json::value {
    const json::object* object = item.if_object();
    const json::value* id = object == nullptr ? nullptr : object->if_contains("id");
    return id != nullptr ? *id : json::value(nullptr);
  };
  json::object page;
  page["object"] = "list";
  page["first_id"] = data.empty() ? json::value(nullptr) : id_of(data.front());
  page["last_id"] = data.empty() ? json::value(nullptr) : id_of(data.back());
  page["has_more"] = start + limit < count;
  page["data"] = std::move(data);
  return json::serialize(page);
}

ResponsesStream::ResponsesStream(std::shared_ptr<const ResponseFacts> facts,
                                 ResponseStatus final_status, int64_t completed_at,
                                 int64_t starting_after)
    : facts_(std::move(facts)),
      final_status_(final_status),
      completed_at_(completed_at),
      lead_(facts_->background ? 3 : 2),
      total_(final_status == ResponseStatus::kCancelled ? 3 : lead_ + facts_->output_tokens + 6),
      next_(std::max<int64_t>(0, starting_after + 1)) {}

bool ResponsesStream::NextStartsLaterToken() const {
  if (final_status_ == ResponseStatus::kCancelled) {
    return false;
  }
  const int64_t token = next_ - lead_ - 2;  // after output_item.added and content_part.added
  return token > 0 && token < facts_->output_tokens;
}

void ResponsesStream::AppendNext(std::string& out) {
  if (Done()) {
    return;
  }
  const ResponseFacts& facts = *facts_;
  const int64_t seq = next_++;
  ++events_sent_;
  json::object data;
  auto start = [&](absl::string_view type) {
    data["type"] = Js(type);
    data["sequence_number"] = seq;
  };
  auto text_position = [&] {
    data["item_id"] = Js(facts.message_id);
    data["output_index"] = 0;
    data["content_index"] = 0;
  };

  // The terminal event, with the final object (and usage).
  if (seq == total_ - 1) {
    absl::string_view type = "response.completed";
    if (final_status_ == ResponseStatus::kIncomplete) {
      type = "response.incomplete";
    } else if (final_status_ == ResponseStatus::kCancelled) {
      type = "response.cancelled";
    }
    start(type);
    data["response"] = ResponseObject(facts, final_status_, completed_at_);
    AppendEvent(out, type, data);
    usage_sent_ = final_status_ != ResponseStatus::kCancelled;
    return;
  }
  // The lead: the response announced, queued (background only) and started.
  if (seq < lead_) {
    const bool created = seq == 0;
    const bool queued = facts.background && seq <= 1;
    const absl::string_view type = created  ? "response.created"
                                   : queued ? "response.queued"
                                            : "response.in_progress";
    start(type);
    data["response"] =
        ResponseObject(facts, queued ? ResponseStatus::kQueued : ResponseStatus::kInProgress, 0);
    AppendEvent(out, type, data);
    return;
  }
  const int64_t step = seq - lead_;
  const int64_t tokens = facts.output_tokens;
  if (step == 0) {
    start("response.output_item.added");
    data["output_index"] = 0;
    data["item"] = MessageItem(facts, false);
    AppendEvent(out, "response.output_item.added", data);
  } else if (step == 1) {
    start("response.content_part.added");
    text_position();
    data["part"] = TextPart("");
    AppendEvent(out, "response.content_part.added", data);
  } else if (step < 2 + tokens) {
    start("response.output_text.delta");
    text_position();
    data["delta"] = Js(OutputToken(step - 2));
    data["logprobs"] = json::array();
    AppendEvent(out, "response.output_text.delta", data);
  } else if (step == 2 + tokens) {
    start("response.output_text.done");
    text_position();
    data["text"] = Js(OutputText(tokens));
    data["logprobs"] = json::array();
    AppendEvent(out, "response.output_text.done", data);
  } else if (step == 3 + tokens) {
    start("response.content_part.done");
    text_position();
    data["part"] = TextPart(OutputText(tokens));
    AppendEvent(out, "response.content_part.done", data);
  } else {
    start("response.output_item.done");
    data["output_index"] = 0;
    data["item"] = MessageItem(facts, true);
    AppendEvent(out, "response.output_item.done", data);
  }
}

}  // namespace spillway::mock
