// The Conversations API of one mock (one Azure resource), on /openai/v1/conversations only:
//   POST   .../conversations                       create ({"items":[...],"metadata":{...}})
//   GET    .../conversations/{id}                  {"id","object":"conversation","created_at",
//                                                  "metadata"}
//   POST   .../conversations/{id}                  replace its metadata ({"metadata":{...}})
//   DELETE .../conversations/{id}                  {"id":...,"object":"conversation.deleted",
//                                                  "deleted":true}
//   GET    .../conversations/{id}/items            a page, ?limit=20&order=desc&after=ID
//   POST   .../conversations/{id}/items            add ({"items":[...]}): the list of those added
//   GET    .../conversations/{id}/items/{item_id}  the item
//   DELETE .../conversations/{id}/items/{item_id}  remove it: the conversation object
// A conversation belongs to no deployment: requests go through auth and the faults aimed at no
// deployment in particular, never a limiter. Responses created with `conversation` add their
// turns to it (responses_handler.h). Errors are OpenAI-shaped (openai_error.h).
#pragma once

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/openai_error.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

class ConversationsHandler {
 public:
  explicit ConversationsHandler(MockState& state) : state_(state) {}

  // A request routed as Route::Kind::kConversations.
  void Handle(const Route& route, ApiAnswer& answer);

 private:
  void Create(ApiAnswer& answer, absl::string_view fault);
  void Retrieve(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void Update(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void Delete(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void ListItems(const Route& route, absl::string_view id, ApiAnswer& answer,
                 absl::string_view fault);
  void AddItems(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void RetrieveItem(absl::string_view id, absl::string_view item_id, ApiAnswer& answer,
                    absl::string_view fault);
  void DeleteItem(absl::string_view id, absl::string_view item_id, ApiAnswer& answer,
                  absl::string_view fault);

  // An OpenAI-shaped error, recorded in the stats.
  static void Fail(ApiAnswer& answer, const OpenAiError& error);
  // 200 with a JSON body, recorded in the stats.
  static void Succeed(ApiAnswer& answer, absl::string_view body, absl::string_view fault);

  MockState& state_;
};

}  // namespace spillway::mock
