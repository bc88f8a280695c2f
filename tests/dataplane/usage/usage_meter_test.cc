// The usage meter (per-thread shards merged into per-minute sums), the spool (sequences that
// never repeat, batches that survive a restart) and the shipper (replay in order, delete
// only what was acked, seal on stop).
#include "dataplane/usage/usage_meter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>
#include <tuple>

#include "common/file_io.h"
#include "dataplane/usage/usage_shipper.h"
#include "dataplane/usage/usage_spool.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kMinute = 1'700'000'040'000;  // a minute boundary

AccessRecord Record(absl::string_view tenant, absl::string_view route, unsigned status,
                    int64_t prompt, int64_t completion) {
  AccessRecord r;
  r.tenant = tenant;
  r.route = route;
  r.backend = "eus2/gpt-4o";
  r.instance = "eus2";
  r.region = "eastus2";
  r.status = status;
  r.attempts = 1;
  r.latency_ms = 12.4;
  r.usage.reported = prompt > 0;
  r.usage.prompt_tokens = prompt;
  r.usage.completion_tokens = completion;
  r.usage.total_tokens = prompt + completion;
  r.usage.cached_tokens = prompt / 2;
  r.metered = true;
  return r;
}

using Key = std::tuple<int64_t, std::string, std::string, uint32_t>;
std::map<Key, v1::UsageAggregate> ByKey(const std::vector<v1::UsageAggregate>& aggregates) {
  std::map<Key, v1::UsageAggregate> out;
  for (const v1::UsageAggregate& a : aggregates) {
    out[{a.minute_unix_ms(), a.tenant(), a.route(), a.status()}] = a;
  }
  return out;
}

TEST(UsageMeter, SumsPerMinuteAndKeyAcrossShards) {
  UsageMeter meter;
  UsageShard* a = meter.AddShard();
  UsageShard* b = meter.AddShard();
  a->Add(Record("t1", "r", 200, 10, 5), kMinute + 1);
  b->Add(Record("t1", "r", 200, 20, 7), kMinute + 59'999);
  a->Add(Record("t1", "r", 200, 1, 1), kMinute + 60'000);  // the next minute
  b->Add(Record("t1", "r", 429, 0, 0), kMinute + 5);
  a->Add(Record("t2", "r", 200, 3, 3), kMinute + 5);
  auto got = ByKey(meter.Collect());
  ASSERT_EQ(got.size(), 4u);
  const v1::UsageAggregate& merged = got.at({kMinute, "t1", "r", 200});
  EXPECT_EQ(merged.requests(), 2u);
  EXPECT_EQ(merged.prompt_tokens(), 30u);
  EXPECT_EQ(merged.completion_tokens(), 12u);
  EXPECT_EQ(merged.total_tokens(), 42u);
  EXPECT_EQ(merged.cached_tokens(), 15u);
  EXPECT_EQ(merged.attempts(), 2u);
  EXPECT_EQ(merged.latency_ms_sum(), 24u);
  EXPECT_EQ(merged.backend_id(), "eus2/gpt-4o");
  EXPECT_EQ(merged.instance(), "eus2");
  EXPECT_EQ(merged.region(), "eastus2");
  EXPECT_EQ(got.at({kMinute + 60'000, "t1", "r", 200}).requests(), 1u);
  EXPECT_EQ(got.at({kMinute, "t1", "r", 429}).total_tokens(), 0u);
  // Collect moved everything out.
  EXPECT_TRUE(meter.Collect().empty());
}

TEST(UsageMeter, UnknownRoutesAreCountedUnderAnEmptyRoute) {
  UsageMeter meter;
  UsageShard* shard = meter.AddShard();
  AccessRecord r = Record("t1", "made-up-route", 404, 0, 0);
  r.backend = r.instance = r.region = "";
  shard->Add(r, kMinute);
  auto got = meter.Collect();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].route(), "");
  EXPECT_EQ(got[0].status(), 404u);
}

TEST(UsageMeter, ConcurrentThreadsLoseNothing) {
  UsageMeter meter;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<UsageShard*> shards;
  for (int i = 0; i < kThreads; ++i) {
    shards.push_back(meter.AddShard());
  }
  std::vector<std::thread> threads;
  uint64_t collected_tokens = 0;
  uint64_t collected_requests = 0;
  auto absorb = [&](const std::vector<v1::UsageAggregate>& aggregates) {
    for (const auto& a : aggregates) {
      collected_tokens += a.total_tokens();
      collected_requests += a.requests();
    }
  };
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < kPerThread; ++n) {
        shards[i]->Add(Record(n % 2 ? "t1" : "t2", "r", 200, 2, 1), kMinute + n);
      }
    });
  }
  // A flusher collecting while the threads add.
  for (int i = 0; i < 50; ++i) {
    absorb(meter.Collect());
  }
  for (std::thread& t : threads) {
    t.join();
  }
  absorb(meter.Collect());
  EXPECT_EQ(collected_requests, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(collected_tokens, uint64_t{kThreads} * kPerThread * 3);
}

v1::UsageBatch BatchOf(int requests) {
  v1::UsageBatch batch;
  batch.set_agent_id("agent-1");
  v1::UsageAggregate* a = batch.add_aggregates();
  a->set_tenant("t1");
  a->set_requests(requests);
  return batch;
}

TEST(UsageSpool, SequencesSurviveRestartsEvenWhenEverythingWasAcked) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  {
    absl::StatusOr<UsageSpool> spool = UsageSpool::Open(dir->path());
    ASSERT_TRUE(spool.ok()) << spool.status();
    v1::UsageBatch one = BatchOf(1), two = BatchOf(2);
    EXPECT_EQ(*spool->Append(one), 1u);
    EXPECT_EQ(*spool->Append(two), 2u);
    EXPECT_EQ(two.sequence(), 2u);
    spool->Remove(1);
  }
  {
    absl::StatusOr<UsageSpool> spool = UsageSpool::Open(dir->path());
    ASSERT_TRUE(spool.ok());
    ASSERT_EQ(spool->batches().size(), 1u);
    EXPECT_EQ(spool->batches().begin()->first, 2u);
    absl::StatusOr<v1::UsageBatch> read = spool->Read(2);
    ASSERT_TRUE(read.ok());
    EXPECT_EQ(read->aggregates(0).requests(), 2u);
    EXPECT_EQ(read->sequence(), 2u);
    spool->Remove(2);
  }
  absl::StatusOr<UsageSpool> spool = UsageSpool::Open(dir->path());
  ASSERT_TRUE(spool.ok());
  EXPECT_TRUE(spool->batches().empty());
  v1::UsageBatch three = BatchOf(3);
  EXPECT_EQ(*spool->Append(three), 3u);  // never 1 again
}

TEST(UsageSpool, LeftoverTempFilesAreRemoved) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(UsageSpool::Open(dir->path()).ok());
  const std::string temp = dir->path() + "/usage-spool/00000000000000000007.pb.tmp.123";
  ASSERT_TRUE(WriteFileAtomically(temp, "half").ok());
  absl::StatusOr<UsageSpool> spool = UsageSpool::Open(dir->path());
  ASSERT_TRUE(spool.ok());
  EXPECT_TRUE(spool->batches().empty());
  EXPECT_FALSE(ReadFile(temp).ok());
}

// The shipper against a fake stream that records what was sent.
class ShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok());
    dir_.emplace(*std::move(dir));
    shard_ = meter_.AddShard();
  }
  std::unique_ptr<UsageShipper> MakeShipper(int max_in_flight = 16) {
    absl::StatusOr<UsageSpool> spool = UsageSpool::Open(dir_->path());
    EXPECT_TRUE(spool.ok());
    UsageShipperOptions options;
    options.flush_interval = std::chrono::hours(1);  // tests flush by hand
    options.max_in_flight = max_in_flight;
    return std::make_unique<UsageShipper>(options, meter_, *std::move(spool), "agent-1",
                                          [this](v1::AgentMessage m) {
                                            std::lock_guard<std::mutex> lock(mu_);
                                            sent_.push_back(m.usage().sequence());
                                          });
  }
  std::vector<uint64_t> TakeSent() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(sent_, {});
  }
  void Count(int n) {
    for (int i = 0; i < n; ++i) {
      shard_->Add(Record("t1", "r", 200, 1, 1), kMinute);
    }
  }

  std::optional<test::ScopedTempDir> dir_;
  UsageMeter meter_;
  UsageShard* shard_ = nullptr;
  std::mutex mu_;
  std::vector<uint64_t> sent_;
};

TEST_F(ShipperTest, SpoolsWhileDisconnectedAndReplaysInOrder) {
  auto shipper = MakeShipper();
  Count(1);
  shipper->Flush();
  shipper->Flush();  // nothing new: no empty batch
  Count(2);
  shipper->Flush();
  EXPECT_TRUE(TakeSent().empty());
  EXPECT_EQ(shipper->spooled_batches(), 2u);
  shipper->OnStreamStarted();
  EXPECT_THAT(TakeSent(), ElementsAre(1, 2));
  // An ack removes exactly that batch.
  shipper->OnUsageAck(2);
  EXPECT_EQ(shipper->spooled_batches(), 1u);
  // The stream drops before batch 1 is acked: the next stream sends it again.
  shipper->OnStreamEnded();
  shipper->OnStreamStarted();
  EXPECT_THAT(TakeSent(), ElementsAre(1));
  shipper->OnUsageAck(1);
  EXPECT_EQ(shipper->spooled_batches(), 0u);
  // Connected: a new batch goes out at once.
  Count(1);
  shipper->Flush();
  EXPECT_THAT(TakeSent(), ElementsAre(3));
}

TEST_F(ShipperTest, BacklogDrainsAWindowAtATime) {
  auto shipper = MakeShipper(/*max_in_flight=*/2);
  for (int i = 0; i < 5; ++i) {
    Count(1);
    shipper->Flush();
  }
  shipper->OnStreamStarted();
  EXPECT_THAT(TakeSent(), ElementsAre(1, 2));
  shipper->OnUsageAck(1);
  EXPECT_THAT(TakeSent(), ElementsAre(3));
  shipper->OnUsageAck(3);
  shipper->OnUsageAck(2);
  EXPECT_THAT(TakeSent(), ElementsAre(4, 5));
}

TEST_F(ShipperTest, StopSealsWhatIsLeftAndTheSpoolOutlivesTheProcess) {
  {
    auto shipper = MakeShipper();
    shipper->Start();
    Count(7);
    shipper->Stop(std::chrono::milliseconds(0));  // no stream: nothing to wait for
  }
  auto restarted = MakeShipper();
  EXPECT_EQ(restarted->spooled_batches(), 1u);
  restarted->OnStreamStarted();
  EXPECT_THAT(TakeSent(), ElementsAre(1));
  absl::StatusOr<UsageSpool> spool = UsageSpool::Open(dir_->path());
  ASSERT_TRUE(spool.ok());
  absl::StatusOr<v1::UsageBatch> batch = spool->Read(1);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->agent_id(), "agent-1");
  ASSERT_EQ(batch->aggregates_size(), 1);
  EXPECT_EQ(batch->aggregates(0).requests(), 7u);
  EXPECT_EQ(batch->aggregates(0).total_tokens(), 14u);
}

}  // namespace
}  // namespace spillway
