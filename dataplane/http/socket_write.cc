// See socket_write.h.
#include "dataplane/http/socket_write.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <cerrno>

#include "dataplane/http/no_throw.h"
#include "dataplane/http/system_call.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;

beast::error_code WriteNow(asio::ip::tcp::socket& socket,
                           std::span<const asio::const_buffer> buffers, std::size_t& written) {
  written = 0;
  constexpr std::size_t kMaxPieces = 8;
  std::array<iovec, kMaxPieces> pieces;
  std::size_t count = 0;
  for (const asio::const_buffer& buffer : buffers) {
    if (buffer.size() == 0) {
      continue;
    }
    if (count == kMaxPieces) {
      break;  // the rest goes with the awaited write
    }
    pieces[count++] = {const_cast<void*>(buffer.data()), buffer.size()};
  }
  if (count == 0) {
    return {};
  }
  msghdr message{};
  message.msg_iov = pieces.data();
  message.msg_iovlen = count;
  for (;;) {
    // MSG_DONTWAIT: this write never blocks, whatever the descriptor's mode.
    const long sent =
        SystemCall(SYS_sendmsg, socket.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      written = static_cast<std::size_t>(sent);
      return {};
    }
    if (sent == -EINTR) {
      continue;
    }
    if (sent == -EAGAIN || sent == -EWOULDBLOCK) {
      return {};
    }
    return beast::error_code(static_cast<int>(-sent), asio::error::get_system_category());
  }
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
