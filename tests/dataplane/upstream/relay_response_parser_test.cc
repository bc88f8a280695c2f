// RelayResponseParser: which backend headers reach the client's head, what it keeps for the
// agent (event stream, retry-after), and the body landing in the caller's buffer.
#include "dataplane/upstream/relay_response_parser.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace spillway {
namespace {

namespace http = boost::beast::http;

// Feeds `bytes` to the parser as one read would, until it is done or wants a body buffer.
std::size_t Feed(RelayResponseParser& parser, const std::string& bytes,
                 boost::beast::error_code& ec) {
  std::size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    const std::size_t n =
        parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec || n == 0) {
      break;
    }
  }
  return used;
}

TEST(RelayResponseParser, HeadKeepsWhatTheClientGetsAndDropsWhatTheAgentSets) {
  RateLimitHeaders quota;
  quota.active = true;
  RelayResponseParser parser(quota);
  parser.body_limit(boost::none);
  const std::string response =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: 2\r\n"
      "Connection: keep-alive\r\n"
      "Keep-Alive: timeout=5\r\n"
      "apim-request-id: 7f1c\r\n"
      "x-ratelimit-remaining-tokens: 99\r\n"
      "x-ratelimit-custom: kept\r\n"
      "X-Spillway-Backend: forged\r\n"
      "\r\n"
      "{}";
  char body[16];
  parser.SetBodyBuffer(body, sizeof(body));
  boost::beast::error_code ec;
  Feed(parser, response, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_done());
  EXPECT_EQ(parser.status(), 200u);
  EXPECT_TRUE(parser.keep_alive());
  EXPECT_FALSE(parser.event_stream());
  EXPECT_EQ(parser.head(),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: application/json\r\n"
            "apim-request-id: 7f1c\r\n"
            "x-ratelimit-custom: kept\r\n");
  EXPECT_EQ(std::string(body, sizeof(body) - parser.body_room()), "{}");
}

TEST(RelayResponseParser, BackendQuotaHeadersPassWhenTheTenantHasNoQuota) {
  RateLimitHeaders none;
  RelayResponseParser parser(none);
  boost::beast::error_code ec;
  Feed(parser,
       "HTTP/1.1 204 No Content\r\nx-ratelimit-remaining-tokens: 99\r\n"
       "Connection: close\r\n\r\n",
       ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_FALSE(parser.keep_alive());
  EXPECT_EQ(parser.head(), "HTTP/1.1 204 No Content\r\nx-ratelimit-remaining-tokens: 99\r\n");
}

TEST(RelayResponseParser, ThrottledAnswerKeepsRetryAfterAndItsBodyCanBeDrained) {
  RateLimitHeaders none;
  RelayResponseParser parser(none);
  parser.body_limit(boost::none);
  const std::string head =
      "HTTP/1.1 429 Too Many Requests\r\n"
      "retry-after: 3\r\n"
      "retry-after-ms: 1500\r\n"
      "Content-Length: 40\r\n\r\n";
  boost::beast::error_code ec;
  parser.eager(false);
  Feed(parser, head, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_header_done());
  EXPECT_EQ(parser.status(), 429u);
  EXPECT_EQ(parser.retry_after(), std::chrono::milliseconds(1500));
  parser.DiscardBody();
  parser.body_limit(64);
  Feed(parser, std::string(40, 'e'), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
}

// A plain head's fields are told apart without Beast's lookup (AddPlainField): every name Beast
// knows but the framing ones, in two cases, and a few it does not, must come out of it as out
// of AddField with Beast's enum: the same head, retry-after and event-stream verdict.
TEST(RelayResponseParser, PlainFieldsAreAddedAsAnyOther) {
  RateLimitHeaders quota;
  quota.active = true;
  std::vector<std::string> names = {"retry-after-ms",
                                    "RETRY-AFTER-MS",
                                    "x-ratelimit-limit-tokens",
                                    "x-spillway-backend",
                                    "x-a",
                                    "t",
                                    "tee",
                                    "apim-request-id"};
  for (unsigned i = 1; i <= static_cast<unsigned>(http::field::xref); ++i) {
    const std::string name(http::to_string(static_cast<http::field>(i)));
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    names.push_back(name);
    names.push_back(upper);
  }
  const std::set<http::field> framing = {http::field::content_length, http::field::connection,
                                         http::field::proxy_connection,
                                         http::field::transfer_encoding, http::field::upgrade};
  int compared = 0;
  for (const std::string& name : names) {
    if (framing.count(http::string_to_field(name)) > 0) continue;
    for (const std::string value : {"text/event-stream", "5"}) {
      RelayResponseParser beast(quota);
      RelayResponseParser plain(quota);
      beast.AddField(http::string_to_field(name), name, value);
      plain.AddPlainField(name, value);
      EXPECT_EQ(plain.head(), beast.head()) << name;
      EXPECT_EQ(plain.event_stream(), beast.event_stream()) << name;
      EXPECT_EQ(plain.retry_after(), beast.retry_after()) << name;
      EXPECT_EQ(plain.has_retry_after(), beast.has_retry_after()) << name;
      ++compared;
    }
  }
  EXPECT_GT(compared, 600);
}

TEST(RelayResponseParser, RetryAfterInSecondsWhenNoMilliseconds) {
  RateLimitHeaders none;
  RelayResponseParser parser(none);
  boost::beast::error_code ec;
  Feed(parser, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
       ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(parser.retry_after(), std::chrono::milliseconds(2000));
}

TEST(RelayResponseParser, ChunkedEventStreamFillsTheBufferThenAsksForAnother) {
  RateLimitHeaders none;
  RelayResponseParser parser(none);
  parser.body_limit(boost::none);
  const std::string response =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream; charset=utf-8\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "9\r\ndata: 1\n\n\r\n"
      "9\r\ndata: 2\n\n\r\n"
      "0\r\n\r\n";
  boost::beast::error_code ec;
  std::size_t used = Feed(parser, response, ec);  // the head only: no buffer yet
  ASSERT_TRUE(parser.is_header_done());
  EXPECT_TRUE(parser.event_stream());
  EXPECT_EQ(parser.head(), "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n");
  EXPECT_TRUE(parser.chunked());

  std::string relayed;
  char chunk[6];
  while (!parser.is_done()) {
    parser.SetBodyBuffer(chunk, sizeof(chunk));
    ec = {};
    used += Feed(parser, response.substr(used), ec);
    ASSERT_TRUE(!ec || ec == http::error::need_buffer) << ec.message();
    const std::size_t got = sizeof(chunk) - parser.body_room();
    ASSERT_TRUE(got > 0 || parser.is_done());
    relayed.append(chunk, got);
  }
  EXPECT_EQ(relayed, "data: 1\n\ndata: 2\n\n");
  EXPECT_EQ(used, response.size());
}

// The agent's relay parses each read where it landed: the body moves back over the chunks'
// framing within the same memory (overlapping copies, which memcpy may not do).
TEST(RelayResponseParser, AChunkedBodyIsParsedInPlace) {
  RateLimitHeaders none;
  RelayResponseParser parser(none);
  parser.body_limit(boost::none);
  boost::beast::error_code ec;
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(Feed(parser, head, ec), head.size());
  ASSERT_TRUE(parser.is_header_done());
  std::string events;
  std::string read;
  for (int i = 0; i < 40; ++i) {
    const std::string event = "data: {\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                              std::string(static_cast<std::size_t>(i) * 7, 'p') + "\"}\n\n";
    events += event;
    char size[16];
    std::snprintf(size, sizeof(size), "%zx", event.size());
    read += std::string(size) + "\r\n" + event + "\r\n";
  }
  read += "0\r\n\r\n";
  std::vector<char> bytes(read.begin(), read.end());
  parser.SetBodyBuffer(bytes.data(), bytes.size());
  parser.eager(true);
  std::size_t at = 0;
  while (at < bytes.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + at, bytes.size() - at), ec);
    ASSERT_TRUE(!ec || ec == http::error::need_more) << ec.message();
    ASSERT_GT(n, 0u);
    at += n;
  }
  ASSERT_TRUE(parser.is_done());
  EXPECT_EQ(at, bytes.size());
  const std::size_t got = bytes.size() - parser.body_room();
  EXPECT_EQ(std::string(bytes.data(), got), events);
}

}  // namespace
}  // namespace spillway
