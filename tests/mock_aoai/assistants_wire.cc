// See assistants_wire.h. Objects are built in the field order of OpenAI's v2 reference examples;
// a streamed run's intermediate objects are its final ones with the fields of that moment.
#include "tests/mock_aoai/assistants_wire.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/completion.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/responses_wire.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

json::value OptionalString(const std::optional<std::string>& value) {
  return value.has_value() ? json::value(Js(*value)) : json::value(nullptr);
}

json::value OptionalInt(const std::optional<int64_t>& value) {
  return value.has_value() ? json::value(*value) : json::value(nullptr);
}

json::object TextContent(absl::string_view text) {
  return json::object{{"type", "text"},
                      {"text", {{"value", Js(text)}, {"annotations", json::array()}}}};
}

// How long a queued run may wait before it expires, as the service sets expires_at.
constexpr int64_t kRunExpirySeconds = 600;

json::object RunObject(const RunSpec& spec) {
  json::object run;
  run["id"] = Js(spec.run_id);
  run["object"] = "thread.run";
  run["created_at"] = spec.created_at;
  run["assistant_id"] = Js(spec.assistant_id);
  run["thread_id"] = Js(spec.thread_id);
  run["status"] = spec.truncated ? "incomplete" : "completed";
  run["started_at"] = spec.created_at;
  run["expires_at"] = nullptr;
  run["cancelled_at"] = nullptr;
  run["failed_at"] = nullptr;
  run["completed_at"] = spec.truncated ? json::value(nullptr) : json::value(spec.created_at);
  run["required_action"] = nullptr;
  run["last_error"] = nullptr;
  run["model"] = Js(spec.model);
  run["instructions"] = OptionalString(spec.instructions);
  run["tools"] = spec.tools;
  run["tool_resources"] = json::object();
  run["metadata"] = spec.metadata;
  run["temperature"] = spec.temperature;
  run["top_p"] = spec.top_p;
  run["max_completion_tokens"] = OptionalInt(spec.max_completion_tokens);
  run["max_prompt_tokens"] = OptionalInt(spec.max_prompt_tokens);
  run["truncation_strategy"] = {{"type", "auto"}, {"last_messages", nullptr}};
  run["incomplete_details"] =
      spec.truncated ? json::value({{"reason", "max_completion_tokens"}}) : json::value(nullptr);
  run["usage"] = {{"prompt_tokens", spec.prompt_tokens},
                  {"completion_tokens", spec.completion_tokens},
                  {"total_tokens", spec.prompt_tokens + spec.completion_tokens}};
  run["response_format"] = "auto";
  run["tool_choice"] = "auto";
  run["parallel_tool_calls"] = true;
  return run;
}

json::object StepObject(const RunSpec& spec, const json::value& usage) {
  json::object step;
  step["id"] = Js(spec.step_id);
  step["object"] = "thread.run.step";
  step["created_at"] = spec.created_at;
  step["run_id"] = Js(spec.run_id);
  step["assistant_id"] = Js(spec.assistant_id);
  step["thread_id"] = Js(spec.thread_id);
  step["type"] = "message_creation";
  step["status"] = "completed";
  step["cancelled_at"] = nullptr;
  step["completed_at"] = spec.created_at;
  step["expired_at"] = nullptr;
  step["failed_at"] = nullptr;
  step["last_error"] = nullptr;
  step["step_details"] = {{"type", "message_creation"},
                          {"message_creation", {{"message_id", Js(spec.message_id)}}}};
  step["usage"] = usage;
  return step;
}

json::object ReplyMessage(const RunSpec& spec, absl::string_view text) {
  json::object message;
  message["id"] = Js(spec.message_id);
  message["object"] = "thread.message";
  message["created_at"] = spec.created_at;
  message["assistant_id"] = Js(spec.assistant_id);
  message["thread_id"] = Js(spec.thread_id);
  message["run_id"] = Js(spec.run_id);
  message["status"] = spec.truncated ? "incomplete" : "completed";
  message["incomplete_details"] =
      spec.truncated ? json::value({{"reason", "max_tokens"}}) : json::value(nullptr);
  message["incomplete_at"] = spec.truncated ? json::value(spec.created_at) : json::value(nullptr);
  message["completed_at"] = spec.truncated ? json::value(nullptr) : json::value(spec.created_at);
  message["role"] = "assistant";
  message["content"] = json::array{TextContent(text)};
  message["attachments"] = json::array();
  message["metadata"] = json::object();
  return message;
}

// The run as a streamed run shows it while queued or in progress: no end, no usage yet.
json::object RunInFlight(const json::object& final_run, bool started) {
  json::object run = final_run;
  run["status"] = started ? "in_progress" : "queued";
  if (!started) run["started_at"] = nullptr;
  run["expires_at"] = run["created_at"].as_int64() + kRunExpirySeconds;
  run["completed_at"] = nullptr;
  run["incomplete_details"] = nullptr;
  run["usage"] = nullptr;
  return run;
}

json::object InProgress(const json::object& done, absl::string_view clear) {
  json::object object = done;
  object["status"] = "in_progress";
  object["completed_at"] = nullptr;
  if (object.contains("incomplete_at")) {
    object["incomplete_at"] = nullptr;
    object["incomplete_details"] = nullptr;
  }
  object[Js(clear)] = clear == "content" ? json::value(json::array()) : json::value(nullptr);
  return object;
}

void AppendEvent(std::string& out, absl::string_view type, const json::object& data) {
  absl::StrAppend(&out, "event: ", type, "\ndata: ", json::serialize(data), "\n\n");
}

}  // namespace

std::string NewObjectId(absl::string_view prefix) {
  std::string id(prefix);
  AppendRandomId(id, 24);
  return id;
}

json::object AssistantObject(absl::string_view id, int64_t created_at, const json::object& fields) {
  json::object assistant;
  assistant["id"] = Js(id);
  assistant["object"] = "assistant";
  assistant["created_at"] = created_at;
  assistant["name"] = nullptr;
  assistant["description"] = nullptr;
  assistant["model"] = "";
  assistant["instructions"] = nullptr;
  assistant["tools"] = json::array();
  assistant["tool_resources"] = json::object();
  assistant["metadata"] = json::object();
  assistant["top_p"] = 1;  // integers: Boost.JSON would spell 1.0 as 1E0
  assistant["temperature"] = 1;
  assistant["response_format"] = "auto";
  ApplyFields(assistant, fields);
  return assistant;
}

void ApplyFields(json::object& object, const json::object& fields) {
  for (const json::key_value_pair& field : fields) {
    object[field.key()] = field.value();
  }
}

json::object ThreadObject(const ThreadInfo& thread) {
  json::object object;
  object["id"] = Js(thread.info.id);
  object["object"] = "thread";
  object["created_at"] = thread.info.created_at;
  object["metadata"] = thread.info.metadata;
  object["tool_resources"] = thread.tool_resources;
  return object;
}

json::object MessageObject(const MessageInput& message, absl::string_view id,
                           absl::string_view thread_id, int64_t created_at) {
  json::object object;
  object["id"] = Js(id);
  object["object"] = "thread.message";
  object["created_at"] = created_at;
  object["assistant_id"] = nullptr;
  object["thread_id"] = Js(thread_id);
  object["run_id"] = nullptr;
  object["status"] = "completed";
  object["incomplete_details"] = nullptr;
  object["incomplete_at"] = nullptr;
  object["completed_at"] = created_at;
  object["role"] = Js(message.role);
  object["content"] = message.content;
  object["attachments"] = message.attachments;
  object["metadata"] = message.metadata;
  return object;
}

std::string DeletedAssistantsObject(absl::string_view id, absl::string_view object) {
  return json::serialize(json::object{{"id", Js(id)}, {"object", Js(object)}, {"deleted", true}});
}

std::string ObjectPage(const json::array& oldest_first, const ListQuery& list,
                       absl::string_view before) {
  if (before.empty()) {
    return InputItemsPage(oldest_first, list.ascending, list.limit, list.after);
  }
  // The page before `before` in the listing order is the `limit` objects just ahead of it, laid
  // out oldest first for InputItemsPage; a placeholder behind them, never listed, makes its
  // has_more say whether an earlier page remains.
  const int64_t count = static_cast<int64_t>(oldest_first.size());
  auto listed = [&](int64_t i) -> const json::value& {
    return oldest_first[static_cast<size_t>(list.ascending ? i : count - 1 - i)];
  };
  int64_t end = count;
  for (int64_t i = 0; i < count; ++i) {
    const json::value* id = listed(i).as_object().if_contains("id");
    if (id != nullptr && id->is_string() && id->get_string() == Js(before)) {
      end = i;
      break;
    }
  }
  const int64_t begin = std::max<int64_t>(0, end - list.limit);
  json::array window;
  for (int64_t i = begin; i < end; ++i) {
    window.push_back(listed(i));
  }
  if (!list.ascending) {
    std::reverse(window.begin(), window.end());
  }
  if (begin > 0) {
    window.insert(list.ascending ? window.end() : window.begin(), nullptr);
  }
  return InputItemsPage(window, list.ascending, end - begin, "");
}

RunFacts MakeRunFacts(const RunSpec& spec) {
  RunFacts facts;
  facts.pieces.reserve(static_cast<size_t>(spec.completion_tokens));
  std::string text;
  for (int64_t i = 0; i < spec.completion_tokens; ++i) {
    std::string piece =
        i == 0 ? absl::StrCat("Message ", spec.message_number, " of ", spec.thread_id, ".")
               : absl::StrCat(i == 1 ? " " : "", OutputToken(i - 1));
    text += piece;
    facts.pieces.push_back(std::move(piece));
  }
  facts.run = RunObject(spec);
  facts.step = StepObject(spec, facts.run["usage"]);
  facts.message = ReplyMessage(spec, text);
  return facts;
}

AssistantsStream::AssistantsStream(std::shared_ptr<const RunFacts> facts)
    : facts_(std::move(facts)),
      lead_(facts_->thread.has_value() ? 8 : 7),
      total_(lead_ + static_cast<int64_t>(facts_->pieces.size()) + 4) {}

bool AssistantsStream::NextStartsLaterToken() const {
  const int64_t token = next_ - lead_;
  return token > 0 && token < static_cast<int64_t>(facts_->pieces.size());
}

void AssistantsStream::AppendNext(std::string& out) {
  if (Done()) {
    return;
  }
  const RunFacts& facts = *facts_;
  const bool incomplete = facts.run.at("status") == "incomplete";
  const int64_t tokens = static_cast<int64_t>(facts.pieces.size());
  int64_t step = next_++;
  if (facts.thread.has_value() && step-- == 0) {
    AppendEvent(out, "thread.created", *facts.thread);
    return;
  }
  if (step < 7) {
    AppendLead(out, step);
    return;
  }
  const int64_t after = step - 7 - tokens;  // events after the last delta
  if (after < 0) {
    const int64_t token = step - 7;
    json::object text{{"value", Js(facts.pieces[static_cast<size_t>(token)])}};
    if (token == 0) text["annotations"] = json::array();
    json::object part{{"index", 0}, {"type", "text"}, {"text", std::move(text)}};
    AppendEvent(out, "thread.message.delta",
                {{"id", facts.message.at("id")},
                 {"object", "thread.message.delta"},
                 {"delta", {{"content", json::array{std::move(part)}}}}});
  } else if (after == 0) {
    AppendEvent(out, incomplete ? "thread.message.incomplete" : "thread.message.completed",
                facts.message);
  } else if (after == 1) {
    AppendEvent(out, "thread.run.step.completed", facts.step);
  } else if (after == 2) {
    AppendEvent(out, incomplete ? "thread.run.incomplete" : "thread.run.completed", facts.run);
    usage_sent_ = true;
  } else {
    out += "event: done\ndata: [DONE]\n\n";
  }
}

void AssistantsStream::AppendLead(std::string& out, int64_t step) const {
  const RunFacts& facts = *facts_;
  switch (step) {
    case 0:
      AppendEvent(out, "thread.run.created", RunInFlight(facts.run, false));
      return;
    case 1:
      AppendEvent(out, "thread.run.queued", RunInFlight(facts.run, false));
      return;
    case 2:
      AppendEvent(out, "thread.run.in_progress", RunInFlight(facts.run, true));
      return;
    case 3:
      AppendEvent(out, "thread.run.step.created", InProgress(facts.step, "usage"));
      return;
    case 4:
      AppendEvent(out, "thread.run.step.in_progress", InProgress(facts.step, "usage"));
      return;
    case 5:
      AppendEvent(out, "thread.message.created", InProgress(facts.message, "content"));
      return;
    case 6:
      AppendEvent(out, "thread.message.in_progress", InProgress(facts.message, "content"));
      return;
    default:
      return;
  }
}

}  // namespace spillway::mock
