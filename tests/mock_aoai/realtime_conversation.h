// What the mock's Realtime WebSocket answers, event by event, without any I/O: session.created
// on connect, session.updated for session.update, conversation.item.added for items, and for
// response.create a response (response.created, output_text deltas, output_text.done,
// response.done with usage) whose input tokens are the conversation's text so far. Two mock
// extensions drive tests: {"type":"mock.echo",...} comes back byte for byte, and
// {"type":"mock.close","code":N,"reason":"..."} makes the mock close the socket.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/stats.h"

namespace spillway::mock {

struct RealtimeEvent {
  std::string text;
  bool token = false;  // an output token's delta: paced like a streamed completion's tokens
};

struct RealtimeReply {
  std::vector<RealtimeEvent> events;
  std::optional<Usage> usage;  // a response ended: what its response.done reported
  bool echo = false;           // mock.echo: the client's message goes back as it came
  bool close = false;          // mock.close: close with this code and reason
  uint16_t close_code = 1000;
  std::string close_reason;
};

class RealtimeConversation {
 public:
  // `model` names the deployment's model in the session; a response without
  // max_output_tokens has `default_output_tokens` tokens.
  RealtimeConversation(absl::string_view model, int64_t default_output_tokens);

  std::string SessionCreated();
  // One text message from the client. Unparsable JSON or an unknown type gets Azure's error
  // event.
  RealtimeReply OnClientEvent(absl::string_view text);

 private:
  std::string EventId();
  void Respond(const boost::json::object& event, RealtimeReply& reply);
  std::string Error(absl::string_view code, absl::string_view message);

  boost::json::object session_;
  int64_t default_output_tokens_;
  int64_t conversation_tokens_ = 0;  // instructions and items so far
  int64_t cached_tokens_ = 0;        // the prefix the previous response already read
  int64_t next_id_ = 1;
};

}  // namespace spillway::mock
