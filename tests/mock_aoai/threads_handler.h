// The Assistants API's threads and their messages (assistants_handler.h lists the routes).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/assistants_request.h"
#include "tests/mock_aoai/assistants_route.h"
#include "tests/mock_aoai/conversations_store.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

// Messages as a thread keeps them (new ids), weighing their text in a later run's prompt.
std::vector<ConversationItem> MessageItems(const std::vector<MessageInput>& messages,
                                           absl::string_view thread_id, int64_t created_at);

class ThreadsHandler {
 public:
  explicit ThreadsHandler(MockState& state) : state_(state) {}

  // A thread or message call that passed auth and faults.
  void Handle(const Route& route, const AssistantsCall& call, ApiAnswer& answer,
              absl::string_view fault);

 private:
  void CreateThread(ApiAnswer& answer, absl::string_view fault);
  void ModifyThread(absl::string_view id, ApiAnswer& answer, absl::string_view fault);
  void CreateMessage(absl::string_view thread_id, ApiAnswer& answer, absl::string_view fault);
  void ListMessages(const Route& route, absl::string_view thread_id, ApiAnswer& answer,
                    absl::string_view fault);
  void ModifyMessage(const AssistantsCall& call, ApiAnswer& answer, absl::string_view fault);
  void DeleteMessage(const AssistantsCall& call, ApiAnswer& answer, absl::string_view fault);

  MockState& state_;
};

}  // namespace spillway::mock
