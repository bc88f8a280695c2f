// `Expect: 100-continue`: a client that asked to be told to go on before it sends its body
// (curl for large bodies, .NET's default) is told so once its key and route were checked.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>

#include "dataplane/http/header_arena.h"

namespace spillway {

// Writes the interim "100 Continue" when `head` asks for it and none of the body has come yet
// (`buffer` holds what followed the head).
boost::asio::awaitable<boost::beast::error_code> AnswerExpectContinue(
    boost::beast::tcp_stream& stream, const RequestHead& head,
    const boost::beast::flat_buffer& buffer, std::chrono::milliseconds timeout);

}  // namespace spillway
