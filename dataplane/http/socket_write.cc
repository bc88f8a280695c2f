// See socket_write.h.
#include "dataplane/http/socket_write.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include "dataplane/http/no_throw.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;

std::size_t WriteNow(beast::tcp_stream& stream, std::span<const asio::const_buffer> buffers,
                     beast::error_code& ec) {
  asio::ip::tcp::socket& socket = stream.socket();
  ec = {};
  // Only synchronous calls see this flag (they return would_block instead of polling);
  // Asio's own operations keep the descriptor non-blocking either way.
  if (!socket.non_blocking()) {
    socket.non_blocking(true, ec);
    if (ec) {
      return 0;
    }
  }
  const std::size_t written = socket.write_some(buffers, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
  }
  return written;
}

asio::awaitable<beast::error_code> WriteRest(beast::tcp_stream& stream,
                                             std::span<const asio::const_buffer> buffers,
                                             std::size_t written,
                                             std::chrono::steady_clock::duration timeout) {
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(written);
  stream.expires_after(timeout);
  auto [write_ec, ignored] = co_await asio::async_write(stream, rest, kNoThrow);
  co_return write_ec;
}

asio::awaitable<beast::error_code> WriteNowOrAwait(beast::tcp_stream& stream,
                                                   std::span<const asio::const_buffer> buffers,
                                                   std::chrono::steady_clock::duration timeout) {
  beast::error_code ec;
  const std::size_t written = WriteNow(stream, buffers, ec);
  if (ec || written == asio::buffer_size(buffers)) {
    co_return ec;
  }
  co_return co_await WriteRest(stream, buffers, written, timeout);
}

}  // namespace spillway
