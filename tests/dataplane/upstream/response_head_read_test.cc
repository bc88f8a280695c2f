// ReadResponseHead over real loopback sockets: a head in pieces is read whole and the body bytes
// that came with it stay buffered; a close before or within the head, a head past the parser's
// limit and bytes that are no HTTP each end the read with their own error.
#include "dataplane/upstream/response_head_read.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/error.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/http/no_throw.h"

namespace spillway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct Exchange {
  beast::error_code ec;
  std::size_t parsed = 0;
  unsigned status = 0;
  bool header_done = false;
  bool taken_plain = false;  // the head never reached Beast's parser (plain_response.h)
  std::string left_in_buffer;
  std::string head;  // what the client would get of it
};

// Sends `pieces` one at a time (10 ms apart, so each is its own read), then closes the sending
// side if `close`; meanwhile reads the head from the other end.
Exchange Exchanged(const std::vector<std::string>& pieces, bool close,
                   std::size_t header_limit = 0) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  beast::tcp_stream upstream(io);
  upstream.socket().connect(acceptor.local_endpoint());
  tcp::socket backend(io);
  acceptor.accept(backend);

  RateLimitHeaders rate_limit;
  RelayResponseParser parser(rate_limit);
  parser.body_limit(boost::none);
  if (header_limit != 0) {
    parser.header_limit(static_cast<std::uint32_t>(header_limit));
  }
  beast::flat_buffer buffer;
  Exchange result;
  std::optional<beast::error_code> done;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result.ec = co_await ReadResponseHead(upstream, buffer, parser, result.parsed);
        done = result.ec;
        backend.close();  // the sender stops at once if it is still waiting
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer pause(io);
        for (const std::string& piece : pieces) {
          auto [write_ec, n] = co_await asio::async_write(backend, asio::buffer(piece), kNoThrow);
          if (write_ec) {
            co_return;
          }
          pause.expires_after(std::chrono::milliseconds(10));
          co_await pause.async_wait(kNoThrow);
        }
        if (close && backend.is_open()) {
          backend.shutdown(tcp::socket::shutdown_send);
        }
      },
      asio::detached);
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(done.has_value()) << "the read never ended";
  result.status = parser.status();
  result.header_done = parser.HeadDone();
  result.taken_plain = parser.HeadDone() && !parser.got_some();
  result.left_in_buffer = beast::buffers_to_string(buffer.data());
  result.head = parser.head();
  return result;
}

TEST(ReadResponseHead, AHeadInPiecesIsReadWholeAndTheBodyStaysBuffered) {
  const Exchange got =
      Exchanged({"HTTP/1.1 200 OK\r\nContent-Le", "ngth: 5\r\nx-a: b\r\n", "\r\nhel"}, false);
  EXPECT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.header_done);
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.left_in_buffer, "hel") << "body bytes are the relay's to parse";
  EXPECT_EQ(got.parsed,
            std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-a: b\r\n\r\n").size());
  EXPECT_TRUE(got.taken_plain) << "a success framed by its length is taken without Beast";
  EXPECT_EQ(got.head, "HTTP/1.1 200 OK\r\nx-a: b\r\n");
}

// What the relay does not count itself (a chunked stream, an error it may drop) is Beast's: the
// same head either way.
TEST(ReadResponseHead, AChunkedStreamAndAnErrorAnswerGoToBeast) {
  const Exchange stream = Exchanged(
      {"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
       "\r\n5\r\n"},
      false);
  EXPECT_FALSE(stream.ec) << stream.ec.message();
  EXPECT_TRUE(stream.header_done);
  EXPECT_FALSE(stream.taken_plain);
  EXPECT_EQ(stream.head, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
  EXPECT_EQ(stream.left_in_buffer, "5\r\n");

  const Exchange throttled = Exchanged(
      {"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\nContent-Length: 2\r\n\r\n{}"}, false);
  EXPECT_FALSE(throttled.ec) << throttled.ec.message();
  EXPECT_EQ(throttled.status, 429u);
  EXPECT_FALSE(throttled.taken_plain);
  EXPECT_EQ(throttled.left_in_buffer, "{}");
}

// Past a few reads, a head still not whole goes from the plain path to Beast's parser (each
// plain try scans from the start): the result is the same head.
TEST(ReadResponseHead, AHeadTrickledByteByByteIsReadWhole) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-a: b\r\n\r\n";
  std::vector<std::string> pieces;
  for (char c : head.substr(0, 20)) pieces.emplace_back(1, c);
  pieces.push_back(head.substr(20) + "ok");
  const Exchange got = Exchanged(pieces, false);
  EXPECT_FALSE(got.ec) << got.ec.message();
  EXPECT_TRUE(got.header_done);
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.parsed, head.size());
  EXPECT_EQ(got.left_in_buffer, "ok");
  EXPECT_EQ(got.head, "HTTP/1.1 200 OK\r\nx-a: b\r\n");
}

TEST(ReadResponseHead, ACloseBeforeAnyByteIsTheEndOfTheStream) {
  const Exchange got = Exchanged({}, true);
  EXPECT_EQ(got.ec, http::error::end_of_stream) << got.ec.message();
  EXPECT_EQ(got.parsed, 0u);
}

TEST(ReadResponseHead, ACloseWithinTheHeadIsAPartialMessage) {
  const Exchange got = Exchanged({"HTTP/1.1 200 OK\r\nContent-"}, true);
  EXPECT_EQ(got.ec, http::error::partial_message) << got.ec.message();
  EXPECT_FALSE(got.header_done);
}

TEST(ReadResponseHead, AHeadPastTheLimitIsRefusedWithoutWaitingForItsEnd) {
  const std::string start = "HTTP/1.1 200 OK\r\nx-big: " + std::string(4000, 'a');
  const Exchange got = Exchanged({start, std::string(4000, 'a')}, false, 2048);
  EXPECT_EQ(got.ec, http::error::header_limit) << got.ec.message();
}

TEST(ReadResponseHead, BytesThatAreNoHttpAreAnError) {
  const Exchange got = Exchanged({"SSH-2.0-OpenSSH_9.2\r\n\r\n"}, false);
  EXPECT_TRUE(got.ec);
  EXPECT_NE(got.ec, http::error::need_more);
  EXPECT_FALSE(got.header_done);
}

}  // namespace
}  // namespace spillway
