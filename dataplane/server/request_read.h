// Reading a client's request on the agent's listener: the head (a plain one without Beast's
// parser, or with it doing only the start line and framing; any other Beast's way), and the
// body, either way, within its limit.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "dataplane/http/header_arena.h"
#include "dataplane/http/plain_request.h"
#include "dataplane/http/socket_deadline.h"
#include "dataplane/server/request_handler.h"

namespace spillway {

// A client's head is refused (431) past this.
inline constexpr std::size_t kRequestHeaderLimit = 64 * 1024;

// Parses the head if the buffer holds all of it (Beast parses a head in one piece), consuming
// it; a plain one mostly without Beast (plain_head.h). No error while the head is not whole.
void ParseHead(RequestParser<boost::beast::http::string_body>& parser,
               boost::beast::flat_buffer& buffer, boost::beast::error_code& ec);

// Parses what the buffer already holds of the body, so a body that came with its head needs no
// awaited read (a trip round the event loop even when it completes at once).
void ParseBuffered(RequestParser<boost::beast::http::string_body>& parser,
                   boost::beast::flat_buffer& buffer, boost::beast::error_code& ec);

// The rest of a body that did not come with its head, through Beast's parser. A client that
// asked to be told to go on (Expect: 100-continue) is told so now, after its key and route
// were checked.
boost::asio::awaitable<boost::beast::error_code> ReadRestOfBody(
    boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
    RequestParser<boost::beast::http::string_body>& parser, SocketDeadline& deadline,
    AgentContext& context);

// The body of a plain request (plain_request.h), `length` bytes: what came with the head, then
// the rest from the socket into the body's string, as Beast's parser would have read it (a
// close before its end is a partial message; 100-continue as above). The length is within the
// body limit.
boost::asio::awaitable<boost::beast::error_code> ReadPlainBody(
    boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer,
    Request<boost::beast::http::string_body>& request, uint64_t length, SocketDeadline& deadline,
    AgentContext& context);

// How a request's body is framed: by Beast's parser, or by a plain request's own head.
struct BodyFraming {
  std::optional<uint64_t> length;
  bool chunked = false;

  // The bytes the body will hold: its length, or the limit when it is chunked.
  int64_t Bytes(uint64_t limit) const {
    return static_cast<int64_t>(length.value_or(chunked ? limit : 0));
  }
};

BodyFraming FramingOf(const std::optional<PlainRequest>& plain,
                      const RequestParser<boost::beast::http::string_body>& parser);

}  // namespace spillway
