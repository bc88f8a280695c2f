// See realtime_conversation.h. Event shapes follow the GA Realtime API reference (server
// events session.created, session.updated, conversation.item.added, response.created,
// response.output_text.delta/.done, response.done, error).
#include "tests/mock_aoai/realtime_conversation.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/completion.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

absl::string_view View(const json::string& s) { return absl::string_view(s.data(), s.size()); }

std::string RandomId(absl::string_view prefix) {
  std::string id(prefix);
  AppendRandomHex(id, 16);
  return id;
}

// The text of a conversation item (message content parts' text or transcript).
int64_t ItemTokens(const json::value& item) {
  std::string text;
  if (const json::object* object = item.if_object()) {
    if (const json::value* content = object->if_contains("content");
        content != nullptr && content->is_array()) {
      for (const json::value& part : content->get_array()) {
        if (const json::object* p = part.if_object()) {
          for (const char* key : {"text", "transcript"}) {
            if (const json::value* t = p->if_contains(key); t != nullptr && t->is_string()) {
              absl::StrAppend(&text, View(t->get_string()));
            }
          }
        }
      }
    }
  }
  return EstimateTextTokens(text);
}

}  // namespace

RealtimeConversation::RealtimeConversation(absl::string_view model, int64_t default_output_tokens)
    : default_output_tokens_(default_output_tokens) {
  session_["object"] = "realtime.session";
  session_["id"] = RandomId("sess_");
  session_["type"] = "realtime";
  session_["model"] = json::string_view(model.data(), model.size());
  session_["output_modalities"] = json::array{"audio"};
  session_["instructions"] = "";
  session_["max_output_tokens"] = "inf";
}

std::string RealtimeConversation::EventId() { return absl::StrCat("event_", next_id_++); }

std::string RealtimeConversation::SessionCreated() {
  json::object event;
  event["type"] = "session.created";
  event["event_id"] = EventId();
  event["session"] = session_;
  return json::serialize(event);
}

std::string RealtimeConversation::Error(absl::string_view code, absl::string_view message) {
  json::object error;
  error["type"] = "invalid_request_error";
  error["code"] = json::string_view(code.data(), code.size());
  error["message"] = json::string_view(message.data(), message.size());
  json::object event;
  event["type"] = "error";
  event["event_id"] = EventId();
  event["error"] = std::move(error);
  return json::serialize(event);
}

RealtimeReply RealtimeConversation::OnClientEvent(absl::string_view text) {
  RealtimeReply reply;
  boost::system::error_code ec;
  const json::value parsed = json::parse(json::string_view(text.data(), text.size()), ec);
  const json::object* event = ec ? nullptr : parsed.if_object();
  const json::value* type = event != nullptr ? event->if_contains("type") : nullptr;
  if (type == nullptr || !type->is_string()) {
    reply.events.push_back({Error("invalid_json", "The event is not a JSON object with a type.")});
    return reply;
  }
  const absl::string_view name = View(type->get_string());
  if (name == "session.update") {
    if (const json::value* update = event->if_contains("session");
        update != nullptr && update->is_object()) {
      for (const auto& [key, value] : update->get_object()) {
        if (key != "id" && key != "object") {
          session_[key] = value;
        }
      }
      if (const json::value* instructions = session_.if_contains("instructions");
          instructions != nullptr && instructions->is_string()) {
        conversation_tokens_ = EstimateTextTokens(View(instructions->get_string()));
      }
    }
    json::object updated;
    updated["type"] = "session.updated";
    updated["event_id"] = EventId();
    updated["session"] = session_;
    reply.events.push_back({json::serialize(updated)});
  } else if (name == "conversation.item.create") {
    json::value item = event->contains("item") ? event->at("item") : json::object();
    conversation_tokens_ += ItemTokens(item);
    if (item.is_object() && !item.get_object().contains("id")) {
      item.get_object()["id"] = RandomId("item_");
    }
    json::object added;
    added["type"] = "conversation.item.added";
    added["event_id"] = EventId();
    added["item"] = std::move(item);
    reply.events.push_back({json::serialize(added)});
  } else if (name == "response.create") {
    Respond(*event, reply);
  } else if (name == "mock.echo") {
    reply.echo = true;
  } else if (name == "mock.close") {
    reply.close = true;
    if (const json::value* code = event->if_contains("code"); code != nullptr && code->is_int64()) {
      reply.close_code = static_cast<uint16_t>(code->get_int64());
    }
    if (const json::value* reason = event->if_contains("reason");
        reason != nullptr && reason->is_string()) {
      reply.close_reason = std::string(View(reason->get_string()));
    }
  } else {
    reply.events.push_back(
        {Error("invalid_value", absl::StrCat("Invalid value: '", name.substr(0, 100),
                                             "'. Supported values are: session.update, "
                                             "conversation.item.create, response.create."))});
  }
  return reply;
}

void RealtimeConversation::Respond(const json::object& event, RealtimeReply& reply) {
  int64_t output_tokens = default_output_tokens_;
  if (const json::value* response = event.if_contains("response");
      response != nullptr && response->is_object()) {
    if (const json::value* max = response->get_object().if_contains("max_output_tokens");
        max != nullptr && max->is_int64() && max->get_int64() > 0) {
      output_tokens = max->get_int64();
    }
  }
  const std::string response_id = RandomId("resp_");
  const std::string item_id = RandomId("item_");
  json::object response;
  response["object"] = "realtime.response";
  response["id"] = response_id;
  response["status"] = "in_progress";
  response["output"] = json::array();
  response["usage"] = nullptr;
  json::object created;
  created["type"] = "response.created";
  created["event_id"] = EventId();
  created["response"] = response;
  reply.events.push_back({json::serialize(created)});

  std::string text;
  for (int64_t i = 0; i < output_tokens; ++i) {
    const absl::string_view token = OutputToken(i);
    absl::StrAppend(&text, token);
    json::object delta;
    delta["type"] = "response.output_text.delta";
    delta["event_id"] = EventId();
    delta["response_id"] = response_id;
    delta["item_id"] = item_id;
    delta["output_index"] = 0;
    delta["content_index"] = 0;
    delta["delta"] = json::string_view(token.data(), token.size());
    reply.events.push_back({json::serialize(delta), true});
  }
  json::object done_text;
  done_text["type"] = "response.output_text.done";
  done_text["event_id"] = EventId();
  done_text["response_id"] = response_id;
  done_text["item_id"] = item_id;
  done_text["output_index"] = 0;
  done_text["content_index"] = 0;
  done_text["text"] = text;
  reply.events.push_back({json::serialize(done_text)});

  // The conversation so far is the input; what an earlier response already read is cached.
  Usage usage;
  usage.prompt_tokens = std::max<int64_t>(1, conversation_tokens_);
  usage.completion_tokens = output_tokens;
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  usage.cached_tokens = std::min(cached_tokens_, usage.prompt_tokens);
  cached_tokens_ = usage.prompt_tokens;
  conversation_tokens_ += output_tokens;  // the answer joins the conversation
  json::object usage_json;
  usage_json["total_tokens"] = usage.total_tokens;
  usage_json["input_tokens"] = usage.prompt_tokens;
  usage_json["output_tokens"] = usage.completion_tokens;
  usage_json["input_token_details"] = json::object{{"text_tokens", usage.prompt_tokens},
                                                   {"audio_tokens", 0},
                                                   {"image_tokens", 0},
                                                   {"cached_tokens", usage.cached_tokens}};
  usage_json["output_token_details"] =
      json::object{{"text_tokens", usage.completion_tokens}, {"audio_tokens", 0}};
  json::object content{{"type", "output_text"}, {"text", text}};
  json::object message{{"id", item_id},
                       {"type", "message"},
                       {"status", "completed"},
                       {"role", "assistant"},
                       {"content", json::array{content}}};
  response["status"] = "completed";
  response["output"] = json::array{message};
  response["usage"] = std::move(usage_json);
  json::object done;
  done["type"] = "response.done";
  done["event_id"] = EventId();
  done["response"] = std::move(response);
  reply.events.push_back({json::serialize(done)});
  reply.usage = usage;
}

}  // namespace spillway::mock
