// The hand-written HTTP/1.1 head pieces: exact bytes, and growth past the reserved capacity.
#include "dataplane/http/http_head.h"

#include <gtest/gtest.h>

#include <string>

namespace spillway {
namespace {

TEST(HttpHead, HeaderLinesAndStatusLine) {
  std::string head;
  AppendStatusLine(head, 429, "");
  AppendHeaderLine(head, "retry-after-ms", "250");
  AppendHeaderLine(head, "Content-Length", uint64_t{18446744073709551615u});
  AppendHeaderLine(head, "x-empty", "");
  AppendPieces(head, {"a", "", "bc", kCrlf});
  EXPECT_EQ(head,
            "HTTP/1.1 429 Too Many Requests\r\n"
            "retry-after-ms: 250\r\n"
            "Content-Length: 18446744073709551615\r\n"
            "x-empty: \r\n"
            "abc\r\n");
}

TEST(HttpHead, KeepsEarlierBytesWhenItGrows) {
  std::string head = "HTTP/1.1 200 OK\r\n";
  head.shrink_to_fit();
  std::string expected = head;
  for (int i = 0; i < 500; ++i) {
    const std::string name = "x-h" + std::to_string(i);
    const std::string value(static_cast<std::size_t>(i % 37), static_cast<char>('a' + i % 26));
    AppendHeaderLine(head, name, value);
    expected += name + ": " + value + "\r\n";
  }
  EXPECT_EQ(head, expected);
}

TEST(HttpHead, ChunkSizeLineIsHex) {
  std::string line = "stale";
  WriteChunkSizeLine(0x1a2, line);
  EXPECT_EQ(line, "1a2\r\n");
  WriteChunkSizeLine(0, line);
  EXPECT_EQ(line, "0\r\n");
  WriteChunkSizeLine(SIZE_MAX, line);
  EXPECT_EQ(line, "ffffffffffffffff\r\n");
}

}  // namespace
}  // namespace spillway
