// See local_reply.h.
#include "dataplane/http/local_reply.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>

#include "common/azure_error.h"

namespace spillway {

http::response<http::string_body> MakeErrorResponse(const ErrorReply& error, bool keep_alive) {
  http::response<http::string_body> response{static_cast<http::status>(error.status), 11};
  response.set(http::field::content_type, "application/json");
  response.set("x-should-retry", error.should_retry ? "true" : "false");
  if (error.retry_after.count() > 0) {
    const int64_t ms = error.retry_after.count();
    response.set("retry-after-ms", std::to_string(ms));
    response.set(http::field::retry_after, std::to_string((ms + 999) / 1000));
  }
  error.rate_limit.ApplyTo(response);
  response.body() = AzureErrorBody(error.code, error.message);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

asio::awaitable<bool> WriteResponse(beast::tcp_stream& client,
                                    http::response<http::string_body>& response,
                                    std::chrono::milliseconds timeout) {
  client.expires_after(timeout);
  auto [ec, written] =
      co_await http::async_write(client, response, asio::as_tuple(asio::use_awaitable));
  client.expires_never();  // left set, Beast would time the stream's next operation by it
  co_return !ec;
}

}  // namespace spillway
