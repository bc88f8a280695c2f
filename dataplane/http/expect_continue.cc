// See expect_continue.h.
#include "dataplane/http/expect_continue.h"

#include <array>

#include "dataplane/http/socket_write.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

asio::awaitable<beast::error_code> AnswerExpectContinue(beast::tcp_stream& stream,
                                                        const RequestHead& head,
                                                        const beast::flat_buffer& buffer,
                                                        std::chrono::milliseconds timeout) {
  if (head.version() < 11 || buffer.size() != 0 ||
      !beast::iequals(head[http::field::expect], "100-continue")) {
    co_return beast::error_code{};
  }
  static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::array<asio::const_buffer, 1> interim{asio::buffer(kContinue, sizeof(kContinue) - 1)};
  co_return co_await WriteNowOrAwait(stream, interim, timeout);
}

}  // namespace spillway
