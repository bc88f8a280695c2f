// The pacing of one HTTP/2 stream's answer, without a network: what each data provider call
// hands out, when it asks to wait, and where the cut falls.
#include "tests/mock_aoai/h2_stream.h"

#include <boost/asio/io_context.hpp>
#include <string>

#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

constexpr char kHead[] = "HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n";

struct Piece {
  ssize_t result = 0;
  std::string data;
  bool eof = false;
  absl::Duration wait = absl::ZeroDuration();
};

Piece Read(H2Stream& stream, size_t length = 16384) {
  std::string buffer(length, '\0');
  uint32_t flags = 0;
  Piece piece;
  piece.result =
      stream.Read(reinterpret_cast<uint8_t*>(buffer.data()), buffer.size(), &flags, &piece.wait);
  if (piece.result > 0) {
    piece.data = buffer.substr(0, static_cast<size_t>(piece.result));
  }
  piece.eof = (flags & NGHTTP2_DATA_FLAG_EOF) != 0;
  return piece;
}

class H2StreamTest : public ::testing::Test {
 protected:
  // A full answer: the head and a 200-byte body.
  H2Stream& Full() {
    stream_.reply.kind = Reply::Kind::kFull;
    stream_.out = std::string(kHead) + std::string(200, 'b');
    return stream_;
  }
  // A streamed chat completion of `tokens` tokens.
  H2Stream& Streamed(int64_t tokens) {
    CompletionFacts facts;
    facts.model = "m";
    facts.tokens_per_choice = tokens;
    StampCompletion(facts, 0);
    stream_.reply.kind = Reply::Kind::kStream;
    stream_.reply.stream.emplace(facts, /*include_usage=*/false);
    stream_.out = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
    return stream_;
  }

  boost::asio::io_context io_;
  H2Stream stream_{1, io_.get_executor()};
};

TEST_F(H2StreamTest, FullBodyAtOnceWithEof) {
  H2Stream& stream = Full();
  ASSERT_TRUE(stream.StartBody(sizeof(kHead) - 1));
  const Piece piece = Read(stream);
  EXPECT_EQ(piece.data, std::string(200, 'b'));
  EXPECT_TRUE(piece.eof);
}

TEST_F(H2StreamTest, EmptyFullBodyHasNoData) {
  H2Stream& stream = Full();
  stream.out = kHead;
  EXPECT_FALSE(stream.StartBody(stream.out.size()));
}

TEST_F(H2StreamTest, DripWaitsBeforeEach64BytePiece) {
  H2Stream& stream = Full();
  stream.reply.drip = absl::Milliseconds(7);
  ASSERT_TRUE(stream.StartBody(sizeof(kHead) - 1));
  std::string body;
  for (int i = 0; i < 4; ++i) {
    const Piece pause = Read(stream);
    ASSERT_EQ(pause.result, NGHTTP2_ERR_DEFERRED);
    EXPECT_EQ(pause.wait, absl::Milliseconds(7));
    stream.Resume();
    const Piece piece = Read(stream);
    EXPECT_EQ(piece.data.size(), i < 3 ? 64u : 8u);
    EXPECT_EQ(piece.eof, i == 3);
    body += piece.data;
  }
  EXPECT_EQ(body, std::string(200, 'b'));
}

TEST_F(H2StreamTest, CutFullBodyAfterHalf) {
  H2Stream& stream = Full();
  stream.reply.cut_after = 1;
  ASSERT_TRUE(stream.StartBody(sizeof(kHead) - 1));
  EXPECT_EQ(Read(stream).data.size(), 100u);
  EXPECT_EQ(Read(stream).result, NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
}

TEST_F(H2StreamTest, OneEventPerReadPacedPerToken) {
  H2Stream& stream = Streamed(3);
  stream.reply.per_token = absl::Milliseconds(5);
  ASSERT_TRUE(stream.StartBody(stream.out.size()));
  EXPECT_NE(Read(stream).data.find("prompt_filter_results"), std::string::npos);
  EXPECT_NE(Read(stream).data.find("\"role\":\"assistant\""), std::string::npos);
  for (int token = 1; token < 3; ++token) {
    const Piece pause = Read(stream);
    ASSERT_EQ(pause.result, NGHTTP2_ERR_DEFERRED) << token;
    EXPECT_EQ(pause.wait, absl::Milliseconds(5));
    stream.Resume();
    const Piece event = Read(stream);
    EXPECT_EQ(event.data.rfind("data: {", 0), 0u);
    EXPECT_EQ(event.data.substr(event.data.size() - 2), "\n\n");
    EXPECT_FALSE(event.eof);
  }
  EXPECT_NE(Read(stream).data.find("finish_reason\":\"stop"), std::string::npos);
  const Piece done = Read(stream);
  EXPECT_EQ(done.data, "data: [DONE]\n\n");
  EXPECT_TRUE(done.eof);
}

TEST_F(H2StreamTest, SmallWindowSplitsAnEventButNeverJoinsTwo) {
  H2Stream& stream = Streamed(1);
  ASSERT_TRUE(stream.StartBody(stream.out.size()));
  std::string first;
  for (;;) {
    const Piece piece = Read(stream, 10);
    ASSERT_GT(piece.result, 0);
    ASSERT_LE(piece.data.size(), 10u);
    first += piece.data;
    if (first.size() >= 2 && first.substr(first.size() - 2) == "\n\n") break;
  }
  EXPECT_NE(first.find("prompt_filter_results"), std::string::npos);
  EXPECT_EQ(Read(stream, 10).data, "data: {\"ch");  // the next event starts a new read
}

TEST_F(H2StreamTest, CutStreamAfterItsEvents) {
  H2Stream& stream = Streamed(5);
  stream.reply.cut_after = 2;
  ASSERT_TRUE(stream.StartBody(stream.out.size()));
  EXPECT_GT(Read(stream).result, 0);
  EXPECT_GT(Read(stream).result, 0);
  EXPECT_EQ(Read(stream).result, NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE);
}

}  // namespace
}  // namespace spillway::mock
