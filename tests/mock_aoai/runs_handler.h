// The Assistants API's runs and run steps (assistants_handler.h lists the routes). A run names an
// assistant of this mock; its model (the run's, else the assistant's) is a deployment of this
// mock, whose faults, limiter and usage counters it goes through as a chat completion does. The
// mock runs it at once: the answer is the run "completed" (or "incomplete" when
// max_completion_tokens cut the reply), with its usage, and the thread holds the reply.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/assistants_request.h"
#include "tests/mock_aoai/assistants_route.h"
#include "tests/mock_aoai/assistants_wire.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

class RunsHandler {
 public:
  explicit RunsHandler(MockState& state) : state_(state) {}

  // POST .../threads/{id}/runs and POST .../threads/runs, after auth; faults come here.
  void Create(const Route& route, const AssistantsCall& call, ApiAnswer& answer);
  // Any other run or step call that passed auth and faults.
  void Handle(const Route& route, const AssistantsCall& call, ApiAnswer& answer,
              absl::string_view fault);

 private:
  // The prompt a run of `assistant` reads: the thread's messages so far (`history_tokens`), the
  // messages the request adds, and the instructions.
  int64_t PromptTokens(const RunInput& input, const boost::json::object& assistant,
                       int64_t history_tokens, std::optional<std::string>& instructions);
  // Adds the run's messages, the run and its step to the thread; the run's facts.
  std::shared_ptr<const RunFacts> Perform(RunInput& input, const boost::json::object& assistant,
                                          RunSpec& spec, absl::string_view thread_id,
                                          int64_t created_at);
  // The answer: the run, or its events.
  void Respond(ApiAnswer& answer, std::shared_ptr<const RunFacts> facts, const RunSpec& spec,
               const LimitSnapshot& limits, bool stream, absl::string_view fault);
  // The run or step `id` of thread `thread_id` whose "object" is `object`; otherwise the 404 is
  // answered and nullopt returned.
  std::optional<boost::json::object> Find(ApiAnswer& answer, absl::string_view thread_id,
                                          absl::string_view id, absl::string_view object);
  void List(const Route& route, const AssistantsCall& call, ApiAnswer& answer,
            absl::string_view fault);
  void Modify(const AssistantsCall& call, ApiAnswer& answer, absl::string_view fault);

  MockState& state_;
};

}  // namespace spillway::mock
