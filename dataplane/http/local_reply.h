// Responses the agent writes itself (errors, health, status), Azure-shaped where they
// stand in for the service.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "dataplane/http/rate_limit_headers.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct ErrorReply {
  unsigned status = 500;
  std::string code;                          // Azure's error code: "429", "DeploymentNotFound", ...
  std::string message;                       // says what was wrong and with which input
  std::chrono::milliseconds retry_after{0};  // > 0: retry-after and retry-after-ms headers
  // SDKs retry 408/409/429/5xx unless told otherwise; say no where retrying cannot help.
  bool should_retry = false;
  RateLimitHeaders rate_limit{};  // the tenant's quota headers, when it has limits
};

http::response<http::string_body> MakeErrorResponse(const ErrorReply& error, bool keep_alive);

// Writes `response` with the write timeout; returns false if the client is gone.
asio::awaitable<bool> WriteResponse(beast::tcp_stream& client,
                                    http::response<http::string_body>& response,
                                    std::chrono::milliseconds timeout);

}  // namespace spillway
