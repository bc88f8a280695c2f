// The stateful Responses API of one mock (one Azure resource), on /openai/v1/responses and on
// the preview /openai/responses?api-version=...:
//   POST   .../responses                      create (deployment = body's "model")
//   GET    .../responses/{id}                 the stored response; ?stream=true&starting_after=N
//                                             replays its events after sequence number N
//   DELETE .../responses/{id}                 {"id":...,"object":"response","deleted":true}
//   POST   .../responses/{id}/cancel          a background response not yet done: "cancelled"
//   GET    .../responses/{id}/input_items     {"object":"list","data":[...],...}
// Creates go through auth, faults and the limiter as completions do; the others through auth
// and faults (the stored response's deployment). A create naming a `conversation` this mock
// holds counts its items as history and adds its turn to it (conversations_handler.h). Wire
// shapes: responses_wire.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/responses_request.h"
#include "tests/mock_aoai/responses_store.h"

namespace spillway::mock {

class ResponsesHandler {
 public:
  explicit ResponsesHandler(MockState& state) : state_(state) {}

  // A request routed as Route::Kind::kResponses.
  void Handle(const Route& route, ApiAnswer& answer);

 private:
  void Create(const Route& route, ApiAnswer& answer);
  // A response created in a conversation adds its input items and its output to it, at once
  // (the service does so once it completes; a mock's answer is decided when it is created).
  void AppendTurn(const ResponseFacts& facts, const std::vector<std::string>& input_texts);
  void Retrieve(const Route& route, const ResponseSnapshot& response, Deployment& deployment,
                ApiAnswer& answer, absl::string_view fault);
  void Delete(const ResponseSnapshot& response, Deployment& deployment, ApiAnswer& answer,
              absl::string_view fault);
  void Cancel(const ResponseSnapshot& response, Deployment& deployment, ApiAnswer& answer,
              absl::string_view fault);
  void InputItems(const Route& route, const ResponseSnapshot& response, Deployment& deployment,
                  ApiAnswer& answer, absl::string_view fault);

  // An OpenAI-shaped error, recorded in the stats.
  void Fail(ApiAnswer& answer, const OpenAiError& error, absl::string_view deployment,
            const LimitSnapshot* limits);
  // 200 with a JSON body, recorded in the stats.
  void Succeed(ApiAnswer& answer, Deployment& deployment, absl::string_view body,
               absl::string_view fault);

  MockState& state_;
};

}  // namespace spillway::mock
