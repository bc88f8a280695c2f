// A synchronous HTTP/1.1 test client (Boost.Beast): one keep-alive connection, plain or TLS, a
// deadline on every socket operation, and a streaming read that timestamps each body piece.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace spillway::test {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // in arrival order, names as sent
  std::string body;

  // The first header named `name`, compared case-insensitively.
  std::optional<std::string> Header(absl::string_view name) const;
  bool HasHeader(absl::string_view name) const { return Header(name).has_value(); }
};

class HttpClient {
 public:
  // `ca_file` (PEM) is the only trust anchor when given; without it, TLS verifies against the
  // system store. The certificate must match `host` (DNS name or IP address).
  HttpClient(std::string host, int port, bool tls = false, std::string ca_file = "");
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (connecting first if needed). Errors:
  // DeadlineExceeded when `timeout` (for the whole exchange) passes, Unavailable for
  // connection, TLS and protocol failures; the connection is dropped after any error.
  // Content-Type defaults to application/json when there is a body.
  absl::StatusOr<HttpResponse> Send(absl::string_view method, absl::string_view target,
                                    const HttpHeaders& headers = {}, absl::string_view body = "",
                                    absl::Duration timeout = absl::Seconds(10));

  // Like Send, but reads the body incrementally and calls `on_piece` with each piece of body
  // data as it is received (chunked framing removed) and the time it arrived. The returned
  // response also holds the whole body.
  using PieceCallback = std::function<void(absl::string_view data, absl::Time arrival)>;
  absl::StatusOr<HttpResponse> SendStreaming(absl::string_view method, absl::string_view target,
                                             const HttpHeaders& headers, absl::string_view body,
                                             const PieceCallback& on_piece,
                                             absl::Duration timeout = absl::Seconds(10));

  // Connects now (Send does it on demand).
  absl::Status Connect(absl::Duration timeout = absl::Seconds(10));
  void Close();
  bool connected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::test
