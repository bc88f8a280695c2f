// Writing to a plain TCP socket the way nginx does: hand the kernel what it takes now, and
// only wait (asynchronously, under a deadline) for the rest.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <span>

namespace spillway {

// An awaited write that completes at once still goes through the event loop: one more
// epoll_wait per write (~1.1 us a syscall on this VM) and the completion's post. A small
// response or request almost always fits the socket buffer, so this writes it inline and
// awaits only a remainder, which gets `timeout`.
// The two halves, for callers that keep the buffers themselves and so need no coroutine frame
// when the write completes at once: WriteNow hands the kernel what it takes without waiting
// (the bytes written; a full socket is not an error), WriteRest awaits the remainder.
std::size_t WriteNow(boost::beast::tcp_stream& stream,
                     std::span<const boost::asio::const_buffer> buffers,
                     boost::beast::error_code& ec);
boost::asio::awaitable<boost::beast::error_code> WriteRest(
    boost::beast::tcp_stream& stream, std::span<const boost::asio::const_buffer> buffers,
    std::size_t written, std::chrono::steady_clock::duration timeout);

boost::asio::awaitable<boost::beast::error_code> WriteNowOrAwait(
    boost::beast::tcp_stream& stream, std::span<const boost::asio::const_buffer> buffers,
    std::chrono::steady_clock::duration timeout);

}  // namespace spillway
