// What an Assistants API request body asks for (assistants, threads, messages, runs), validated
// with OpenAI's messages (openai_error.h); metadata as the Conversations API checks it.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/openai_error.h"

namespace spillway::mock {

// 404 "No <kind> found with id '<id>'.", param and code null: what the service answers to an id
// it does not hold (kind: "assistant", "thread", "message", "run", "run step").
OpenAiError NoObjectFound(absl::string_view kind, absl::string_view id);
// 400 "The requested model '<model>' does not exist." (model_not_found): an assistant or a run
// naming a model that is no deployment of this resource (Azure answers 400 there,
// Azure/azure-sdk-for-js#29147, in OpenAI's words).
OpenAiError ModelNotFound(absl::string_view model);

// The fields an assistant create (`model` required) or modify gave, validated, under their
// names: model, name, description, instructions, tools, tool_resources, metadata, temperature,
// top_p, response_format.
std::optional<OpenAiError> ParseAssistantFields(absl::string_view body, bool create,
                                                boost::json::object& fields);

// A message as POST .../messages, a thread's `messages` and a run's `additional_messages` give it.
struct MessageInput {
  std::string role;                // "user" or "assistant"
  boost::json::array content;      // as the message object shows it: [{"type":"text",...}]
  std::string text;                // what it adds to the prompt
  boost::json::array attachments;  // as given
  boost::json::object metadata;
};
std::optional<OpenAiError> ParseMessageCreate(absl::string_view body, MessageInput& message);

// A thread create ({"messages","metadata","tool_resources"}, all optional, the body too), or a
// thread-and-run's `thread`.
struct ThreadInput {
  std::vector<MessageInput> messages;
  boost::json::object metadata;
  boost::json::object tool_resources;
};
std::optional<OpenAiError> ParseThreadCreate(absl::string_view body, ThreadInput& thread);

// A modify that takes `metadata` (threads, messages, runs) and, for threads, `tool_resources`:
// each set only when given.
struct ModifyInput {
  std::optional<boost::json::object> metadata;
  std::optional<boost::json::object> tool_resources;
};
std::optional<OpenAiError> ParseModify(absl::string_view body, ModifyInput& modify);

// A run create, or (with `thread`) a thread-and-run create.
struct RunInput {
  std::string assistant_id;
  std::optional<std::string> model;         // overrides the assistant's
  std::optional<std::string> instructions;  // overrides the assistant's
  std::string additional_instructions;
  std::vector<MessageInput> additional_messages;
  std::optional<boost::json::array> tools;  // overrides the assistant's
  boost::json::object metadata;
  std::optional<int64_t> max_prompt_tokens;
  std::optional<int64_t> max_completion_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  bool stream = false;
  std::optional<ThreadInput> thread;  // thread-and-run only ({} when not given there)
};
std::optional<OpenAiError> ParseRunCreate(absl::string_view body, bool with_thread, RunInput& run);

}  // namespace spillway::mock
