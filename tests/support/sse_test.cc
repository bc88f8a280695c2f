// The SSE helpers every streaming test leans on: framing, multi-line data, CRLF, split pieces.
#include "tests/support/sse.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::test {
namespace {

using ::testing::ElementsAre;

TEST(ParseSseDataTest, PayloadsInOrder) {
  EXPECT_THAT(ParseSseData("data: {\"a\":1}\n\ndata: [DONE]\n\n"),
              ElementsAre("{\"a\":1}", "[DONE]"));
}

TEST(ParseSseDataTest, CommentsSkippedMultiLineJoinedCrlfAccepted) {
  EXPECT_THAT(ParseSseData(": keep-alive\n\nevent: x\ndata: one\ndata:two\n\n"
                           "data: crlf\r\n\r\ndata: unfinished"),
              ElementsAre("one\ntwo", "crlf"));
}

TEST(SseCollectorTest, EventsCompleteAcrossPieces) {
  SseCollector collector;
  const absl::Time t0 = absl::FromUnixSeconds(1);
  const absl::Time t1 = absl::FromUnixSeconds(2);
  collector.Feed("data: fir", t0);
  EXPECT_TRUE(collector.events().empty());
  collector.Feed("st\n\ndata: second\n\nda", t1);
  collector.Feed("ta: third\n\n", t1 + absl::Seconds(1));
  ASSERT_EQ(collector.events().size(), 3u);
  EXPECT_EQ(collector.events()[0].data, "first");
  EXPECT_EQ(collector.events()[0].arrival, t1);  // completed by the second piece
  EXPECT_EQ(collector.events()[1].data, "second");
  EXPECT_EQ(collector.events()[2].arrival, t1 + absl::Seconds(1));
}

}  // namespace
}  // namespace spillway::test
