// See response_head_read.h.
#include "dataplane/upstream/response_head_read.h"

#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>

#include "dataplane/http/no_throw.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {
constexpr std::size_t kReadMax = 64 * 1024;
}  // namespace

asio::awaitable<beast::error_code> ReadResponseHead(beast::tcp_stream& upstream,
                                                    beast::flat_buffer& buffer,
                                                    RelayResponseParser& parser,
                                                    std::size_t& parsed) {
  for (;;) {
    if (buffer.size() > 0) {
      beast::error_code ec;
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      parsed += used;
      if (ec && ec != http::error::need_more) {
        co_return ec;
      }
      if (!ec && parser.is_header_done()) {
        co_return ec;
      }
    }
    const std::size_t room = beast::read_size(buffer, kReadMax);
    if (room == 0) {
      co_return http::error::buffer_overflow;
    }
    auto [read_ec, bytes] =
        co_await upstream.socket().async_read_some(buffer.prepare(room), kNoThrow);
    buffer.commit(bytes);
    if (read_ec == asio::error::eof) {
      co_return parser.got_some() ? http::error::partial_message : http::error::end_of_stream;
    }
    if (read_ec) {
      co_return read_ec;
    }
  }
}

}  // namespace spillway
