// The HTTP/1 heads the ApiHandler writes, as the HTTP/2 headers the mock sends.
#include "tests/mock_aoai/h2_head.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::vector<std::pair<std::string, std::string>> Fields(const H2Head& head) {
  std::vector<std::pair<std::string, std::string>> fields;
  for (const nghttp2_nv& nv : head.headers) {
    fields.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                        std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
  }
  return fields;
}

TEST(H2HeadTest, StatusFirstNamesLowercasedConnectionHeadersDropped) {
  std::string out =
      "HTTP/1.1 429 Too Many Requests\r\nx-request-id: abc\r\nConnection: close\r\n"
      "Retry-After: 2\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n"
      "Proxy-Connection: x\r\nUpgrade: h2c\r\nContent-Type:  application/json \r\n"
      "Content-Length: 2\r\n\r\n{}";
  H2Head head;
  ASSERT_TRUE(ToH2Head(out, head));
  EXPECT_EQ(out.substr(head.size), "{}");
  EXPECT_THAT(
      Fields(head),
      ElementsAre(Pair(":status", "429"), Pair("x-request-id", "abc"), Pair("retry-after", "2"),
                  Pair("content-type", "application/json"), Pair("content-length", "2")));
}

TEST(H2HeadTest, HeadWithoutHeadersOrReason) {
  std::string out = "HTTP/1.1 204\r\n\r\n";
  H2Head head;
  ASSERT_TRUE(ToH2Head(out, head));
  EXPECT_EQ(head.size, out.size());
  EXPECT_THAT(Fields(head), ElementsAre(Pair(":status", "204")));
}

TEST(H2HeadTest, RefusesWhatIsNotACompleteHead) {
  H2Head head;
  for (std::string out :
       {std::string("HTTP/1.1 200 OK\r\nx: y\r\n"), std::string("HTTP/1.1 2x0 OK\r\n\r\n"),
        std::string("HTTP/2 200\r\n\r\n"), std::string("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
        std::string("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n")}) {
    EXPECT_FALSE(ToH2Head(out, head)) << out;
  }
}

}  // namespace
}  // namespace spillway::mock
