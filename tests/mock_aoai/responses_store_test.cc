// The Responses API's store with a stepped clock: status over time, cancel, delete, and the
// count and byte bounds.
#include "tests/mock_aoai/responses_store.h"

#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

class ResponsesStoreTest : public ::testing::Test {
 protected:
  ResponsesStore Make(size_t capacity = 100, size_t bytes = 1 << 20) {
    return ResponsesStore(capacity, bytes, [this] { return now_; });
  }
  static std::shared_ptr<const ResponseFacts> Facts(const std::string& id, bool background,
                                                    bool truncated = false) {
    auto facts = std::make_shared<ResponseFacts>();
    facts->id = id;
    facts->background = background;
    facts->truncated = truncated;
    return facts;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

TEST_F(ResponsesStoreTest, BackgroundIsQueuedThenInProgressThenCompleted) {
  ResponsesStore store = Make();
  store.Put(Facts("resp_a", true), 10, now_, now_ + absl::Milliseconds(200));
  EXPECT_EQ(store.Get("resp_a")->status, ResponseStatus::kQueued);
  now_ += absl::Milliseconds(100);
  EXPECT_EQ(store.Get("resp_a")->status, ResponseStatus::kInProgress);
  now_ += absl::Milliseconds(100);
  const std::optional<ResponseSnapshot> done = store.Get("resp_a");
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->status, ResponseStatus::kCompleted);
  EXPECT_TRUE(done->terminal());
  EXPECT_EQ(done->completed_at, absl::ToUnixSeconds(now_));
}

TEST_F(ResponsesStoreTest, ForegroundIsInProgressUntilDoneAndMayEndIncomplete) {
  ResponsesStore store = Make();
  store.Put(Facts("resp_a", false, true), 10, now_, now_ + absl::Milliseconds(50));
  EXPECT_EQ(store.Get("resp_a")->status, ResponseStatus::kInProgress);
  now_ += absl::Milliseconds(50);
  EXPECT_EQ(store.Get("resp_a")->status, ResponseStatus::kIncomplete);
  store.Put(Facts("resp_b", false), 10, now_, now_);
  EXPECT_EQ(store.Get("resp_b")->status, ResponseStatus::kCompleted);
  EXPECT_FALSE(store.Get("resp_c").has_value());
}

TEST_F(ResponsesStoreTest, CancelOnlyBackgroundStillRunning) {
  ResponsesStore store = Make();
  store.Put(Facts("resp_bg", true), 10, now_, now_ + absl::Seconds(1));
  store.Put(Facts("resp_fg", false), 10, now_, now_);
  ResponseSnapshot snapshot;
  EXPECT_EQ(store.Cancel("resp_none", &snapshot), ResponsesStore::CancelOutcome::kNotFound);
  EXPECT_EQ(store.Cancel("resp_fg", &snapshot), ResponsesStore::CancelOutcome::kNotBackground);
  EXPECT_EQ(store.Cancel("resp_bg", &snapshot), ResponsesStore::CancelOutcome::kCancelled);
  EXPECT_EQ(snapshot.status, ResponseStatus::kCancelled);
  // Stays cancelled, also once its generation would have ended; cancelling again is a no-op.
  now_ += absl::Seconds(2);
  EXPECT_EQ(store.Get("resp_bg")->status, ResponseStatus::kCancelled);
  EXPECT_EQ(store.Cancel("resp_bg", &snapshot), ResponsesStore::CancelOutcome::kAlreadyDone);
  EXPECT_EQ(snapshot.status, ResponseStatus::kCancelled);

  store.Put(Facts("resp_done", true), 10, now_, now_);
  EXPECT_EQ(store.Cancel("resp_done", &snapshot), ResponsesStore::CancelOutcome::kAlreadyDone);
  EXPECT_EQ(snapshot.status, ResponseStatus::kCompleted);
}

TEST_F(ResponsesStoreTest, DeleteForgets) {
  ResponsesStore store = Make();
  store.Put(Facts("resp_a", false), 10, now_, now_);
  EXPECT_TRUE(store.Delete("resp_a"));
  EXPECT_FALSE(store.Delete("resp_a"));
  EXPECT_FALSE(store.Get("resp_a").has_value());
  EXPECT_EQ(store.size(), 0u);
}

TEST_F(ResponsesStoreTest, OldestEvictedPastTheCount) {
  ResponsesStore store = Make(3);
  for (const char* id : {"resp_1", "resp_2", "resp_3", "resp_4"}) {
    store.Put(Facts(id, false), 10, now_, now_);
  }
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.evicted(), 1u);
  EXPECT_FALSE(store.Get("resp_1").has_value());
  EXPECT_TRUE(store.Get("resp_4").has_value());
  // A deleted one frees its place: nothing else is evicted for the next.
  EXPECT_TRUE(store.Delete("resp_3"));
  store.Put(Facts("resp_5", false), 10, now_, now_);
  EXPECT_EQ(store.evicted(), 1u);
  EXPECT_TRUE(store.Get("resp_2").has_value());
}

TEST_F(ResponsesStoreTest, OldestEvictedPastTheBytes) {
  ResponsesStore store = Make(100, 1000);
  store.Put(Facts("resp_1", false), 600, now_, now_);
  store.Put(Facts("resp_2", false), 300, now_, now_);
  store.Put(Facts("resp_3", false), 300, now_, now_);
  EXPECT_FALSE(store.Get("resp_1").has_value());
  EXPECT_TRUE(store.Get("resp_2").has_value());
  EXPECT_TRUE(store.Get("resp_3").has_value());
  // One larger than the whole bound is still kept, alone.
  store.Put(Facts("resp_big", false), 5000, now_, now_);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_TRUE(store.Get("resp_big").has_value());
}

TEST_F(ResponsesStoreTest, ClearForgetsEverything) {
  ResponsesStore store = Make(1);
  store.Put(Facts("resp_1", false), 10, now_, now_);
  store.Put(Facts("resp_2", false), 10, now_, now_);
  store.Clear();
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.evicted(), 0u);
}

}  // namespace
}  // namespace spillway::mock
