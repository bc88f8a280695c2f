// See socket_write.h.
#include "dataplane/http/socket_write.h"

#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include "dataplane/http/no_throw.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;

beast::error_code WriteNow(asio::ip::tcp::socket& socket,
                           std::span<const asio::const_buffer> buffers, std::size_t& written) {
  beast::error_code ec;
  written = 0;
  // Only synchronous calls see this flag (they return would_block instead of polling);
  // Asio's own operations keep the descriptor non-blocking either way.
  if (!socket.non_blocking()) {
    socket.non_blocking(true, ec);
  }
  if (!ec) {
    written = socket.write_some(buffers, ec);
  }
  if (ec && (ec == asio::error::would_block || ec == asio::error::try_again)) {
    ec = {};
  }
  return ec;
}

asio::awaitable<beast::error_code> WriteRest(beast::tcp_stream& stream,
                                             std::span<const asio::const_buffer> buffers,
                                             std::size_t written,
                                             std::chrono::steady_clock::duration timeout) {
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(written);
  stream.expires_after(timeout);
  auto [write_ec, ignored] = co_await asio::async_write(stream, rest, kNoThrow);
  stream.expires_never();  // left set, Beast would time the stream's next operation by it
  co_return write_ec;
}

asio::awaitable<beast::error_code> WriteNowOrAwait(beast::tcp_stream& stream,
                                                   std::span<const asio::const_buffer> buffers,
                                                   std::chrono::steady_clock::duration timeout) {
  std::size_t written = 0;
  if (const beast::error_code ec = WriteNow(stream, buffers, written);
      ec || written == asio::buffer_size(buffers)) {
    co_return ec;
  }
  // The rest here rather than through WriteRest: one frame, not two.
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(written);
  stream.expires_after(timeout);
  auto [write_ec, ignored] = co_await asio::async_write(stream, rest, kNoThrow);
  stream.expires_never();  // left set, Beast would time the stream's next operation by it
  co_return write_ec;
}

}  // namespace spillway
