// Writing to a plain TCP socket the way nginx does: hand the kernel what it takes now, and
// only wait (asynchronously, under a deadline) for the rest.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstddef>
#include <span>

namespace spillway {

// An awaited write that completes at once still goes through the event loop: one more
// epoll_wait per write (~1.1 us a syscall on this VM) and the completion's post. A small
// response or request almost always fits the socket buffer, so this writes it inline and
// awaits only a remainder, which gets `timeout`.
boost::asio::awaitable<boost::beast::error_code> WriteNowOrAwait(
    boost::beast::tcp_stream& stream, std::span<const boost::asio::const_buffer> buffers,
    std::chrono::steady_clock::duration timeout);

// WriteNowOrAwait in two halves, for a caller that is a coroutine already: the awaited half's
// frame (an allocation) is then made only when the socket did not take everything at once.
// WriteNow writes what the socket takes now and says how much in `written`; it fails only
// with an error other than "would block".
boost::beast::error_code WriteNow(boost::asio::ip::tcp::socket& socket,
                                  std::span<const boost::asio::const_buffer> buffers,
                                  std::size_t& written);
inline boost::beast::error_code WriteNow(boost::beast::tcp_stream& stream,
                                         std::span<const boost::asio::const_buffer> buffers,
                                         std::size_t& written) {
  return WriteNow(stream.socket(), buffers, written);
}
// Awaits the bytes of `buffers` after the first `written`, under `timeout`.
boost::asio::awaitable<boost::beast::error_code> WriteRest(
    boost::beast::tcp_stream& stream, std::span<const boost::asio::const_buffer> buffers,
    std::size_t written, std::chrono::steady_clock::duration timeout);

}  // namespace spillway
