// The Assistants API (v2) of one mock (one Azure resource), on the dated surface Azure documents
// for it (/openai/assistants?api-version=2024-05-01-preview, /openai/threads...) and on /openai/v1:
//   POST   .../assistants                        create ({"model": a deployment of this mock,...})
//   GET    .../assistants                        a page, ?limit=20&order=desc&after=ID&before=ID
//   GET    .../assistants/{id}                   the assistant;  POST: modify;  DELETE
//   POST   .../threads                           create ({"messages","metadata","tool_resources"})
//   GET    .../threads/{id}                      the thread;  POST: modify;  DELETE
//   POST   .../threads/{id}/messages             add a message;  GET: a page (?run_id=...)
//   GET    .../threads/{id}/messages/{msg_id}    the message;  POST: modify;  DELETE
//   POST   .../threads/{id}/runs                 run an assistant of this mock on the thread
//   POST   .../threads/runs                      create a thread and run it
//   GET    .../threads/{id}/runs                 a page;  GET .../runs/{run_id}: the run;  POST:
//                                                modify;  POST .../runs/{run_id}/cancel
//   GET    .../threads/{id}/runs/{run_id}/steps  a page;  GET .../steps/{step_id}: the step
// A run completes at once: it adds the assistant's reply to the thread and is charged, limited,
// faulted and metered on its model's deployment like a chat completion (runs_handler.h). The
// other calls belong to no deployment: auth and the faults aimed at none apply, as for
// conversations. Unknown ids are OpenAI's 404 "No <kind> found with id '...'.".
#pragma once

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/assistants_route.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/runs_handler.h"
#include "tests/mock_aoai/threads_handler.h"

namespace spillway::mock {

class AssistantsHandler {
 public:
  explicit AssistantsHandler(MockState& state) : state_(state), threads_(state), runs_(state) {}

  // A request routed as Route::Kind::kAssistants.
  void Handle(const Route& route, ApiAnswer& answer);

 private:
  void Create(ApiAnswer& answer, absl::string_view fault);
  void List(const Route& route, ApiAnswer& answer, absl::string_view fault);
  void Retrieve(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void Modify(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void Delete(absl::string_view id, ApiAnswer& answer, absl::string_view fault);

  MockState& state_;
  ThreadsHandler threads_;
  RunsHandler runs_;
};

}  // namespace spillway::mock
