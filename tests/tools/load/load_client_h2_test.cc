// The HTTP/2 path's pure parts: a request as HTTP/2 headers (from the HTTP/1.1 request the plan
// builds) and the error kind of a failed stream, from dataplane/upstream's error texts.
#include "tools/load/load_client_h2.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tools/load/load_args.h"
#include "tools/load/request_plan.h"

namespace spillway::load {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::vector<std::pair<std::string, std::string>> Pairs(const H2Request& request) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const H2Header& h : request.headers) {
    pairs.emplace_back(std::string(h.name), std::string(h.value));
  }
  return pairs;
}

TEST(ToH2RequestTest, ThePlannedRequestAsHttp2Headers) {
  absl::StatusOr<LoadOptions> options =
      ParseLoadArgs({"--target", "https://example.openai.azure.com:8443", "--api-key", "k1",
                     "--route", "gpt-4o", "--rpm", "60", "--duration", "1s", "--http2"});
  ASSERT_TRUE(options.ok()) << options.status();
  PlannedRequest planned;
  planned.stream = true;
  planned.prompt_tokens = 10;
  planned.max_tokens = 5;
  const std::string http1 = BuildHttpRequest(*options, planned);
  H2Request h2;
  ToH2Request(http1, /*tls=*/true, h2);
  const std::string body = http1.substr(http1.find("\r\n\r\n") + 4);
  EXPECT_THAT(
      Pairs(h2),
      ElementsAre(
          Pair(":method", "POST"), Pair(":scheme", "https"),
          Pair(":authority", "example.openai.azure.com:8443"),
          Pair(":path", "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"),
          Pair("api-key", "k1"), Pair("content-type", "application/json"),
          Pair("accept", "text/event-stream"), Pair("user-agent", "spillwayctl-load"),
          Pair("content-length", std::to_string(body.size()))));
  EXPECT_EQ(h2.body, body);
  EXPECT_EQ(h2.body.data(), http1.data() + http1.size() - body.size()) << "a view, not a copy";
}

TEST(ToH2RequestTest, ConnectionFieldsAreLeftOutAndNamesLowercased) {
  const std::string http1 =
      "GET /x HTTP/1.1\r\nHOST: h:80\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n"
      "Transfer-Encoding: chunked\r\nX-Custom:  v \r\n\r\n";
  H2Request h2;
  ToH2Request(http1, /*tls=*/false, h2);
  EXPECT_THAT(Pairs(h2),
              ElementsAre(Pair(":method", "GET"), Pair(":scheme", "http"),
                          Pair(":authority", "h:80"), Pair(":path", "/x"), Pair("x-custom", "v")));
  EXPECT_TRUE(h2.body.empty());
}

TEST(H2ErrorKindTest, FromTheSessionsErrors) {
  // As dataplane/upstream/h2_session.cc and upstream_pool.cc word them.
  EXPECT_EQ(H2ErrorKind("http://127.0.0.1:1 reset the HTTP/2 stream (INTERNAL_ERROR)", true),
            "h2_reset");
  EXPECT_EQ(H2ErrorKind("http://127.0.0.1:1 reset the HTTP/2 stream (CANCEL)", false), "h2_reset");
  EXPECT_EQ(H2ErrorKind("http://127.0.0.1:1 refused the HTTP/2 stream (REFUSED_STREAM)", false),
            "h2_refused");
  EXPECT_EQ(H2ErrorKind("cannot connect to http://127.0.0.1:1: Connection refused", false),
            "connect");
  EXPECT_EQ(H2ErrorKind("TLS handshake with https://127.0.0.1:1 failed: x", false), "connect");
  EXPECT_EQ(H2ErrorKind("HTTP/2 protocol error from http://127.0.0.1:1: Invalid argument", true),
            "bad_http");
  EXPECT_EQ(H2ErrorKind("HTTP/2 connection to http://127.0.0.1:1 failed: End of file", true),
            "cut");
  EXPECT_EQ(H2ErrorKind("HTTP/2 connection to http://127.0.0.1:1 failed: End of file", false),
            "closed_unanswered");
}

}  // namespace
}  // namespace spillway::load
