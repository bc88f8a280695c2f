// See response_head_read.h.
#include "dataplane/upstream/response_head_read.h"

#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>
#include <string_view>

#include "dataplane/http/drained_read.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/plain_head.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {
constexpr std::size_t kReadMax = 64 * 1024;
constexpr int kPlainTries = 4;

// A plain head (head_scan.h): taken whole when the relay can count its body itself
// (plain_response.h), else given to the parser mostly without Beast (plain_head.h).
PlainHeadPut PutPlain(std::string_view bytes, RelayResponseParser& parser, std::size_t& used,
                      beast::error_code& ec) {
  HeadLines lines;
  switch (ScanHead(bytes, parser.head_limit(), lines)) {
    case HeadScan::kWhole:
      break;
    case HeadScan::kIncomplete:
      return PlainHeadPut::kIncomplete;
    case HeadScan::kNotPlain:
      return PlainHeadPut::kNotPlain;
  }
  if (parser.TakePlainHead(bytes, lines)) {
    used = lines.size;
    ec = {};
    return PlainHeadPut::kTaken;
  }
  return PutScannedHead(
      parser, bytes, lines, used, ec,
      [&parser](http::field name, std::string_view name_string, std::string_view value) {
        parser.AddField(name, name_string, value);
      });
}

}  // namespace

asio::awaitable<beast::error_code> ReadResponseHead(beast::tcp_stream& upstream,
                                                    beast::flat_buffer& buffer,
                                                    RelayResponseParser& parser,
                                                    std::size_t& parsed) {
  int plain_tries = 0;
  for (;;) {
    if (buffer.size() > 0) {
      beast::error_code ec;
      std::size_t used = 0;
      // A plain head mostly without Beast (plain_head.h), as long as Beast has seen none of it;
      // a head that is not plain, from the first byte on, Beast's way. Each try scans the head
      // from its start: a head still not whole after a few reads (a backend trickling it) goes
      // to Beast, which resumes where it stopped, so the scans stay bounded.
      PlainHeadPut put = PlainHeadPut::kNotPlain;
      if (!parser.got_some() && plain_tries++ < kPlainTries) {
        put = PutPlain(
            std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()), parser,
            used, ec);
      }
      if (put == PlainHeadPut::kNotPlain) {
        used = parser.put(buffer.data(), ec);
      } else if (put == PlainHeadPut::kIncomplete) {
        ec = http::error::need_more;
      }
      buffer.consume(used);
      parsed += used;
      if (ec && ec != http::error::need_more) {
        co_return ec;
      }
      if (!ec && parser.HeadDone()) {
        co_return ec;
      }
    }
    const std::size_t room = beast::read_size(buffer, kReadMax);
    if (room == 0) {
      co_return http::error::buffer_overflow;
    }
    // A read that emptied the socket says so (DrainedReadBuffer, on connections the pool made
    // with drain reports): the next answer on this connection, which cannot come before its
    // request is sent, is then waited for in the event loop, not tried first with a read that
    // fails with EAGAIN (one system call a request).
    auto [read_ec, bytes] = co_await upstream.socket().async_read_some(
        DrainedReadBuffer(buffer.prepare(room)), kNoThrow);
    buffer.commit(bytes);
    if (read_ec == asio::error::eof) {
      // Bytes of a head not yet whole are in the buffer, unseen by Beast (the plain path waits
      // for the whole head).
      const bool partial = parser.got_some() || buffer.size() > 0;
      co_return partial ? http::error::partial_message : http::error::end_of_stream;
    }
    if (read_ec) {
      co_return read_ec;
    }
  }
}

}  // namespace spillway
