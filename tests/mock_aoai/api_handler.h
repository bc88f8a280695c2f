// The mock's decisions, one call per request, without blocking; what remains to do on the wire
// (wait, stream, drip, cut, reset, hang) is handed to the session as a Reply.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/assistants_handler.h"
#include "tests/mock_aoai/conversations_handler.h"
#include "tests/mock_aoai/files_api.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/realtime_handler.h"
#include "tests/mock_aoai/reply.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/responses_handler.h"

namespace spillway::mock {

class ApiHandler {
 public:
  explicit ApiHandler(MockState& state)
      : state_(state),
        responses_(state),
        conversations_(state),
        realtime_(state),
        files_api_(state),
        assistants_(state) {}

  // Fills `reply` and writes the response head (and, for full replies, the body) into `out`;
  // `scratch` is a reusable buffer.
  void Handle(const RequestView& request, std::string& out, std::string& scratch, Reply& reply);
  // A request that could not be parsed: 400 (malformed) or 413 (body over the limit), with the
  // connection closed after it.
  void RejectMalformed(int status, absl::string_view message, std::string& out,
                       std::string& scratch);
  // Post-hoc correction once the answer is done: refunds the unused part of the up-front
  // charge and adds the usage the client received to the stats.
  void Settle(const Reply& reply, bool delivered);

 private:
  void HandleApi(const Route& route, const RequestView& request, std::string& out,
                 std::string& scratch, Reply& reply, absl::Time arrival);
  void HandleToken(const Route& route, const RequestView& request, std::string& out, Reply& reply);

  MockState& state_;
  ResponsesHandler responses_;
  ConversationsHandler conversations_;
  RealtimeHandler realtime_;
  FilesApiHandler files_api_;
  AssistantsHandler assistants_;
};

}  // namespace spillway::mock
