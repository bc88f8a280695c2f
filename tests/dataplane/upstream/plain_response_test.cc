// Answers the relay takes without Beast's parser (plain_response.h, RelayResponseParser's plain
// head): each must come out as the relay makes it through Beast, head, framing and body, and
// what it must not take (errors, interim answers, other framings) is left to Beast.
#include "dataplane/upstream/plain_response.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <random>
#include <string>
#include <vector>

#include "dataplane/http/head_scan.h"
#include "dataplane/http/rate_limit_headers.h"
#include "dataplane/upstream/relay_response_parser.h"
#include "tests/dataplane/http/plain_head_compare.h"

namespace spillway {
namespace {

namespace http = boost::beast::http;

void ExpectTakenAsBeastTakesIt(const std::string& bytes, int* taken = nullptr) {
  bool took = false;
  EXPECT_EQ(plain_head_compare::TakenResponseDifference(bytes, took), "")
      << testing::PrintToString(bytes);
  if (took && taken != nullptr) ++*taken;
}

// The reason in the answer is a view of `bytes`.
std::optional<PlainResponse> Read(const std::string& bytes) {
  HeadLines lines;
  if (ScanHead(bytes, 8192, lines) != HeadScan::kWhole) return std::nullopt;
  return ReadPlainResponse(bytes, lines);
}

TEST(PlainResponse, TakesAzureAnswersAsBeastDoes) {
  int taken = 0;
  ExpectTakenAsBeastTakesIt(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
      "apim-request-id: 1\r\nx-ratelimit-remaining-tokens: 9\r\nretry-after-ms: 10\r\n\r\n"
      "{\"usage\":{\"total_tokens\":1}}",
      &taken);
  // The body's end is its length: the bytes after it are not this answer's.
  ExpectTakenAsBeastTakesIt("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1", &taken);
  ExpectTakenAsBeastTakesIt("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                            &taken);
  ExpectTakenAsBeastTakesIt(
      "HTTP/1.1 200 \r\nconnection: Keep-Alive\r\ncontent-length: 000004\r\n\r\nab", &taken);
  ExpectTakenAsBeastTakesIt(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 12\r\n\r\n"
      "data: {}\n\n",
      &taken);
  EXPECT_EQ(taken, 5);

  const std::string partial =
      "HTTP/1.1 206 Partial\r\nContent-Length: 3\r\nConnection: close\r\n\r\n";
  const std::optional<PlainResponse> closing = Read(partial);
  ASSERT_TRUE(closing.has_value());
  EXPECT_EQ(closing->status, 206u);
  EXPECT_EQ(closing->reason, "Partial");
  EXPECT_EQ(closing->content_length, 3u);
  EXPECT_FALSE(closing->keep_alive);
}

TEST(PlainResponse, LeavesToBeastWhatItMustFrameOrMayDrop) {
  for (const std::string head : {
           "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 500 Error\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 100 Continue\r\n\r\n",
           "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
           "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
           "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.1 200 OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nUpgrade: h2c\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nProxy-Connection: close\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive, x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: upgrade\r\n\r\n",
           "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.1 2x0 OK\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n",
           "HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\n",
           "http/1.1 200 OK\r\nContent-Length: 1\r\n\r\n",
       }) {
    EXPECT_FALSE(Read(head).has_value()) << head;
  }
}

TEST(PlainResponse, AgreesWithBeastOnMutatedAnswers) {
  std::mt19937 random(1206);
  const std::vector<std::string> lines = {"Content-Type: application/json",
                                          "Content-Length: 3",
                                          "content-length: 0",
                                          "Content-Length: 12",
                                          "Connection: keep-alive",
                                          "Connection: close",
                                          "CONNECTION: Keep-Alive",
                                          "Proxy-Connection: close",
                                          "retry-after: 4",
                                          "x-ratelimit-remaining-requests: 3",
                                          "Transfer-Encoding: chunked",
                                          "Upgrade: h2c"};
  const std::vector<std::string> starts = {"HTTP/1.1 200 OK", "HTTP/1.1 201 Created",
                                           "HTTP/1.1 299 ", "HTTP/1.0 200 OK"};
  int taken = 0;
  for (int round = 0; round < 20000; ++round) {
    ExpectTakenAsBeastTakesIt(
        plain_head_compare::MutatedHead(random, round, starts, lines, "abcdefghijklmnop"), &taken);
    if (HasFailure()) break;
  }
  EXPECT_GT(taken, 1000);
}

// The body of a plain head is counted by the parser: what fits the buffer, no byte past the
// length, and a close before the last byte is a partial message, as Beast would say.
TEST(PlainResponse, TheBodyIsCountedAndACloseBeforeItsEndIsPartial) {
  const RateLimitHeaders none;
  RelayResponseParser parser(none);
  HeadLines lines;
  const std::string throttled = "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 5\r\n\r\n";
  ASSERT_EQ(ScanHead(throttled, 8192, lines), HeadScan::kWhole);
  EXPECT_FALSE(parser.TakePlainHead(throttled, lines)) << "an error is Beast's";
  EXPECT_FALSE(parser.HeadDone());
  EXPECT_EQ(parser.head(), "") << "a head not taken is left untouched";

  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-a: b\r\n\r\n";
  ASSERT_EQ(ScanHead(head, 8192, lines), HeadScan::kWhole);
  ASSERT_TRUE(parser.TakePlainHead(head, lines));
  EXPECT_TRUE(parser.HeadDone());
  EXPECT_FALSE(parser.Done());
  EXPECT_TRUE(parser.KeepsAlive());
  EXPECT_EQ(parser.Length(), 5u);
  EXPECT_EQ(parser.head(), "HTTP/1.1 200 OK\r\nx-a: b\r\n");

  char small[2];
  parser.SetBodyBuffer(small, sizeof(small));
  boost::beast::error_code ec;
  EXPECT_EQ(parser.Parse(boost::asio::buffer("hel", 3), ec), 2u);
  EXPECT_EQ(ec, http::error::need_buffer);
  EXPECT_EQ(std::string(small, 2), "he");

  char room[16];
  parser.SetBodyBuffer(room, sizeof(room));
  EXPECT_EQ(parser.Parse(boost::asio::buffer("l", 1), ec), 1u);
  EXPECT_FALSE(ec);
  EXPECT_FALSE(parser.Done());
  parser.ParseEof(ec);
  EXPECT_EQ(ec, http::error::partial_message) << "two bytes were still due";

  EXPECT_EQ(parser.Parse(boost::asio::buffer("loHTTP", 6), ec), 2u);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(parser.Done());
  EXPECT_EQ(parser.Parse(boost::asio::buffer("HTTP", 4), ec), 0u) << "no byte past the length";
  parser.ParseEof(ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(parser.Length(), 5u) << "the length given, not what is left of it";
}

}  // namespace
}  // namespace spillway
