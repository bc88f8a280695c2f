// The plain-head path (head_scan, plain_head) against Beast's own parse of the same bytes: what
// it takes must come out as Beast would have made it, and what it leaves must be left untouched.
#include "dataplane/http/plain_head.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "dataplane/http/head_scan.h"
#include "dataplane/http/plain_request.h"
#include "dataplane/http/rate_limit_headers.h"
#include "dataplane/upstream/relay_response_parser.h"
#include "tests/dataplane/http/plain_head_compare.h"

namespace spillway {
namespace {

namespace http = boost::beast::http;
using boost::beast::error_code;

constexpr std::size_t kLimit = 8192;

using plain_head_compare::Canonical;

struct RequestParse {
  std::string beast;  // Beast alone
  std::string plain;  // the plain path, and Beast where it declined
  PlainHeadPut put;
};

RequestParse ParseRequestBothWays(const std::string& bytes) {
  const plain_head_compare::Parse plain = plain_head_compare::ParseRequest(bytes, true, kLimit);
  return {plain_head_compare::ParseRequest(bytes, false, kLimit).description, plain.description,
          plain.put};
}

const char kSdkRequest[] =
    "POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Connection: keep-alive\r\n"
    "Accept: application/json\r\n"
    "Content-Type: application/json\r\n"
    "User-Agent: AzureOpenAI/Python 1.54.4\r\n"
    "X-Stainless-Lang: python\r\n"
    "X-Stainless-Retry-Count: 0\r\n"
    "api-key:   tenant-key-1  \r\n"
    "x-empty:\r\n"
    "x-tab:\tvalue\twith\ttabs\t\r\n"
    "x-obs-text: caf\xc3\xa9\r\n"
    "Content-Length: 5\r\n"
    "\r\n"
    "hello";

TEST(PlainHead, SdkRequestIsTakenAndMatchesBeast) {
  const RequestParse parse = ParseRequestBothWays(kSdkRequest);
  EXPECT_EQ(parse.put, PlainHeadPut::kTaken);
  EXPECT_EQ(Canonical(parse.plain), Canonical(parse.beast));
  EXPECT_NE(parse.plain.find("api-key: [tenant-key-1]"), std::string::npos) << parse.plain;
  EXPECT_NE(parse.plain.find("x-empty: []"), std::string::npos) << parse.plain;
  EXPECT_NE(parse.plain.find("length 5"), std::string::npos) << parse.plain;
  EXPECT_NE(parse.plain.find("done 0"), std::string::npos) << parse.plain;
}

TEST(PlainHead, FramingGoesThroughBeast) {
  // Each of these frames the message differently; each must come out as Beast has it.
  const std::vector<std::string> heads = {
      "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST /a HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
      "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET /a HTTP/1.0\r\n\r\n",
      "GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      "GET /a HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
      "GET /a HTTP/1.1\r\nCONNECTION: KEEP-ALIVE\r\n\r\n",
      "POST /a HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc",
  };
  for (const auto& head : heads) {
    const RequestParse parse = ParseRequestBothWays(head);
    EXPECT_EQ(parse.put, PlainHeadPut::kTaken) << head;
    EXPECT_EQ(Canonical(parse.plain), Canonical(parse.beast)) << head;
  }
}

TEST(PlainHead, BeastsRefusalsOfFramingAreKept) {
  const std::vector<std::string> heads = {
      "POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "POST /a HTTP/1.1\r\nContent-Length: x\r\n\r\n",
      "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
      "POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
      "P@ST /a HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /a HTTP/9.9\r\nHost: x\r\n\r\n",
  };
  for (const auto& head : heads) {
    const RequestParse parse = ParseRequestBothWays(head);
    EXPECT_EQ(parse.plain.substr(0, 6), parse.beast.substr(0, 6)) << head;
    EXPECT_EQ(Canonical(parse.plain), Canonical(parse.beast)) << head;
  }
}

TEST(PlainHead, WhatIsNotPlainIsLeftToBeast) {
  const std::vector<std::string> heads = {
      "GET /a HTTP/1.1\r\nX-Folded: a\r\n b\r\n\r\n",  // obs-fold
      "GET /a HTTP/1.1\nHost: x\n\n",                  // bare LF
      "GET /a HTTP/1.1\r\nHost : x\r\n\r\n",           // space before the colon
      "GET /a HTTP/1.1\r\nHo(st: x\r\n\r\n",           // a separator in a name
      "GET /a HTTP/1.1\r\n: x\r\n\r\n",                // an empty name
      "GET /a HTTP/1.1\r\nHost x\r\n\r\n",             // no colon
      "GET /a HTTP/1.1\r\nX-Bel: a\ab\r\n\r\n",        // a control byte in a value
      "GET /a HTTP/1.1\r\nX-Del: a\x7f\r\n\r\n",       // DEL in a value
      "GET /a HTTP/1.1\r\nX-Cr: a\rb\r\n\r\n",         // a CR alone
      "\r\nGET /a HTTP/1.1\r\n\r\n",                   // an empty line first
      "GET /a HTTP/1.1\r\n X: a\r\n\r\n",              // whitespace opening a field
      "GET /a HTTP/1.1\r\nX-\xc3\xa9: a\r\n\r\n",      // obs-text in a name
  };
  for (const auto& head : heads) {
    const std::string bytes(head.data(), head.size());
    HeadLines lines;
    EXPECT_EQ(ScanHead(bytes, kLimit, lines), HeadScan::kNotPlain) << head;
    const RequestParse parse = ParseRequestBothWays(bytes);
    EXPECT_EQ(parse.put, PlainHeadPut::kNotPlain) << head;
    EXPECT_EQ(parse.plain, parse.beast) << head;
  }
}

TEST(PlainHead, NulInValueIsNotPlain) {
  // A NUL inside a literal ends the string: built with its length.
  const std::string bytes("GET /a HTTP/1.1\r\nX-Nul: a\0b\r\n\r\n", 32);
  HeadLines lines;
  EXPECT_EQ(ScanHead(bytes, kLimit, lines), HeadScan::kNotPlain);
}

TEST(PlainHead, IncompleteHeadsWaitAndLimitsAreBeasts) {
  HeadLines lines;
  const std::string whole = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  for (std::size_t size = 0; size < whole.size(); ++size) {
    EXPECT_EQ(ScanHead(whole.substr(0, size), kLimit, lines), HeadScan::kIncomplete) << size;
  }
  EXPECT_EQ(ScanHead(whole, kLimit, lines), HeadScan::kWhole);
  EXPECT_EQ(lines.size, whole.size());
  EXPECT_EQ(lines.count, 1u);
  // A head at or past the limit, whole or not, is Beast's to refuse.
  EXPECT_EQ(ScanHead(whole, whole.size(), lines), HeadScan::kNotPlain);
  EXPECT_EQ(ScanHead(whole.substr(0, 20), 20, lines), HeadScan::kNotPlain);
  EXPECT_EQ(ScanHead(whole, whole.size() + 1, lines), HeadScan::kWhole);
  // Past the fields a head may have.
  std::string many = "GET /a HTTP/1.1\r\n";
  for (std::size_t i = 0; i <= HeadLines::kMaxFields; ++i) many += "X-F: v\r\n";
  many += "\r\n";
  EXPECT_EQ(ScanHead(many, 64 * 1024, lines), HeadScan::kNotPlain);
}

TEST(PlainHead, BodyBytesAfterTheHeadAreNotTaken) {
  const std::string bytes = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /b";
  HeadLines lines;
  ASSERT_EQ(ScanHead(bytes, kLimit, lines), HeadScan::kWhole);
  EXPECT_EQ(bytes.substr(lines.size), "abcPOST /b");
}

// Random heads built from pieces that are plain or nearly so, and random bytes flipped in
// plain heads: the plain path and Beast agree on every one.
TEST(PlainHead, AgreesWithBeastOnMutatedHeads) {
  std::mt19937 random(20261206);
  const std::vector<std::string> names = {
      "Host", "Content-Length", "content-length",   "Connection", "Transfer-Encoding", "Upgrade",
      "X-A",  "api-key",        "Proxy-Connection", "x-b_c",      "Content-Type"};
  const std::vector<std::string> values = {
      "x", "3",       "keep-alive", "close", "chunked",       "  v  ",
      "",  "upgrade", "websocket",  "1, 2",  "gzip, chunked", "\tq\t"};
  const std::string alphabet("\r\n \t:a\x7f\x80\0-,", 11);
  int taken = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string head = round % 3 == 0 ? "POST /x HTTP/1.0\r\n" : "POST /x HTTP/1.1\r\n";
    const int fields = static_cast<int>(random() % 5);
    for (int i = 0; i < fields; ++i) {
      head += names[random() % names.size()] + ": " + values[random() % values.size()] + "\r\n";
    }
    head += "\r\nabc";
    if (round % 2 == 1) {
      const int flips = 1 + static_cast<int>(random() % 3);
      for (int i = 0; i < flips; ++i) {
        head[random() % head.size()] = alphabet[random() % alphabet.size()];
      }
    }
    const RequestParse parse = ParseRequestBothWays(head);
    if (parse.put == PlainHeadPut::kTaken) {
      ++taken;
    }
    ASSERT_EQ(Canonical(parse.plain), Canonical(parse.beast)) << testing::PrintToString(head);
  }
  EXPECT_GT(taken, 5000);  // the comparison is mostly of the plain path, not of Beast with itself
}

// A request taken without Beast (TakePlainRequest) must be the one Beast's parser makes of the
// same bytes, framed by its length alone; what it does not take is left untouched.
void ExpectTakenAsBeastTakesIt(const std::string& bytes, int* taken = nullptr) {
  bool took = false;
  EXPECT_EQ(plain_head_compare::TakenDifference(bytes, kLimit, took), "")
      << testing::PrintToString(bytes);
  if (took && taken != nullptr) ++*taken;
}

TEST(PlainRequest, TakesTheSdksRequestAsBeastDoes) {
  int taken = 0;
  ExpectTakenAsBeastTakesIt(kSdkRequest, &taken);
  ExpectTakenAsBeastTakesIt("GET /openai/models?api-version=1 HTTP/1.0\r\nHost: a\r\n\r\n", &taken);
  ExpectTakenAsBeastTakesIt("DELETE /x HTTP/1.1\r\nConnection: close\r\n\r\n", &taken);
  // Past the parser's default body limit: the session checks its own limit after the head.
  ExpectTakenAsBeastTakesIt("POST /x HTTP/1.1\r\nContent-Length: 000800000000002\r\n\r\n", &taken);
  EXPECT_EQ(taken, 4);
}

TEST(PlainRequest, LeavesToBeastWhatBeastFramesOrMightRefuse) {
  for (const std::string head : {
           "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
           "GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
           "GET /a HTTP/1.1\r\nConnection: keep-alive, x\r\n\r\n",
           "POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
           "POST /a HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
           "POST /a HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
           "BREW /a HTTP/1.1\r\n\r\n",
           "get /a HTTP/1.1\r\n\r\n",
           "GET /a HTTP/2.0\r\n\r\n",
           "GET  /a HTTP/1.1\r\n\r\n",
           "GET /a  HTTP/1.1\r\n\r\n",
           "GET /\t HTTP/1.1\r\n\r\n",
           "GET\t/a HTTP/1.1\r\n\r\n",
           "GET HTTP/1.1\r\n\r\n",
           "GET /a HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
           "GET /a HTTP/1.1\r\n",
       }) {
    http::request<http::string_body> plain;
    EXPECT_FALSE(TakePlainRequest(head, kLimit, plain).has_value()) << head;
    EXPECT_EQ(plain.begin(), plain.end()) << head;
  }
}

TEST(PlainRequest, AgreesWithBeastOnMutatedRequests) {
  std::mt19937 random(61220);
  const std::vector<std::string> lines = {"Host: a",
                                          "Content-Length: 3",
                                          "content-length: 0",
                                          "Connection: keep-alive",
                                          "Connection: close",
                                          "CONNECTION: Keep-Alive",
                                          "Proxy-Connection: close",
                                          "X-A: b",
                                          "api-key:  k ",
                                          "Expect: 100-continue",
                                          "Transfer-Encoding: chunked",
                                          "Upgrade: h2c"};
  const std::vector<std::string> starts = {"POST /x?a=1 HTTP/1.1", "GET /y HTTP/1.0",
                                           "PUT /z HTTP/1.1", "OPTIONS * HTTP/1.1"};
  int taken = 0;
  for (int round = 0; round < 20000; ++round) {
    ExpectTakenAsBeastTakesIt(plain_head_compare::MutatedHead(random, round, starts, lines, "abc"),
                              &taken);
    if (HasFailure()) break;
  }
  EXPECT_GT(taken, 5000);
}

// The backend's side: the relay parser's head and facts come out the same either way.
TEST(PlainHead, BackendResponseMatchesBeast) {
  const std::vector<std::string> heads = {
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
      "Connection: keep-alive\r\nx-ratelimit-remaining-tokens: 10\r\napim-request-id: a\r\n"
      "\r\n{}",
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
      "Transfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 429 Too Many Requests\r\nretry-after-ms: 1500\r\nretry-after: 2\r\n"
      "Content-Length: 0\r\n\r\n",
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 100 Continue\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
  };
  for (const auto& head : heads) {
    const plain_head_compare::Parse plain = plain_head_compare::ParseResponse(head, true);
    EXPECT_EQ(plain.put, PlainHeadPut::kTaken) << head;
    EXPECT_EQ(plain.description, plain_head_compare::ParseResponse(head, false).description)
        << head;
  }
}

}  // namespace
}  // namespace spillway
