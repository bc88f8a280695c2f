// A synchronous WebSocket test client (Boost.Beast) for 127.0.0.1: the upgrade with chosen
// headers (a refusal comes back as the HTTP answer it was), text and binary messages, and the
// close handshake with its code and reason; every operation under a deadline.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/support/http_client.h"

namespace spillway::test {

struct WebSocketMessage {
  std::string data;
  bool binary = false;
};

// The close frame a peer sent: its code (0 when it had none) and reason.
struct WebSocketClose {
  int code = 0;
  std::string reason;
};

class WebSocketClient {
 public:
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Connects to 127.0.0.1:`port` and asks to upgrade `target`. When the server answers with
  // anything but 101, the error is FailedPrecondition and `refusal` (if given) gets the answer.
  static absl::StatusOr<std::unique_ptr<WebSocketClient>> Connect(
      int port, absl::string_view target, const HttpHeaders& headers = {},
      HttpResponse* refusal = nullptr, absl::Duration timeout = absl::Seconds(10));

  // The 101's headers.
  const HttpResponse& handshake() const { return handshake_; }

  absl::Status Send(absl::string_view data, bool binary = false,
                    absl::Duration timeout = absl::Seconds(10));
  // The next message. When the peer closed instead: FailedPrecondition, and closed() says how.
  absl::StatusOr<WebSocketMessage> Read(absl::Duration timeout = absl::Seconds(10));
  // The close handshake: sends the close frame and waits for the peer's (messages before it
  // are dropped).
  absl::Status Close(int code, absl::string_view reason,
                     absl::Duration timeout = absl::Seconds(10));
  // The peer's close frame, once a Read or Close saw it.
  const std::optional<WebSocketClose>& closed() const { return closed_; }

 private:
  struct Impl;
  WebSocketClient();

  std::unique_ptr<Impl> impl_;
  HttpResponse handshake_;
  std::optional<WebSocketClose> closed_;
};

}  // namespace spillway::test
