// Crash safety and concurrency of the store, on SQLite and PostgreSQL: a writer process killed
// with SIGKILL at random moments never leaves a half-applied topology or loses an acknowledged
// one, and callers on several threads, or on two stores sharing one database (replicas), are
// serialized without losing changes.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/store/store.h"
#include "tests/controlplane/store/store_test_util.h"

namespace spillway {
namespace {

using test::ReferenceTopology;

// The topology of version `version`: several entries carry the number, so a topology that
// mixes two versions (a half-applied change) cannot match any single one.
v1::Topology Versioned(uint64_t version) {
  v1::Topology topology = ReferenceTopology();
  topology.mutable_stamps(0)->set_description(absl::StrCat("version ", version));
  topology.mutable_deployments(3)->set_capacity(static_cast<uint32_t>(1 + version % 1000));
  topology.mutable_tenants(2)->mutable_limits()->set_tokens_per_minute(1000 + version);
  return topology;
}

// In the child: applies Versioned(n + 1) over and over, writing each acknowledged version
// to `ack_fd`, until killed. Exit codes tell the parent what went wrong instead.
[[noreturn]] void WriteForever(const StoreLocation& location, int ack_fd) {
  absl::StatusOr<std::unique_ptr<TopologyStore>> store = TopologyStore::Open(location);
  if (!store.ok()) {
    _exit(2);
  }
  while (true) {
    absl::StatusOr<StoredTopology> current = (*store)->Load();
    if (!current.ok()) {
      _exit(3);
    }
    const uint64_t next = current->version + 1;
    absl::StatusOr<v1::ApplyResponse> applied = (*store)->Apply(Versioned(next), false);
    if (!applied.ok() || applied->version() != next) {
      _exit(4);
    }
    if (write(ack_fd, &next, sizeof(next)) != sizeof(next)) {
      _exit(5);
    }
  }
}

class StoreCrashTest : public test::StoreTest {};

TEST_P(StoreCrashTest, KilledWriterLeavesTheLastCommittedTopologyIntact) {
  std::random_device seed_source;
  const unsigned seed = seed_source();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 random(seed);
  uint64_t last_acked = 0;
  // Kills that landed after the commit reached the file but before Apply returned: the
  // change is kept though never acknowledged, which is allowed (the caller retries an
  // idempotent apply). Typically most kills, since the fsync is the slow part.
  uint64_t kills_after_commit = 0;
  for (int round = 0; round < 8; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      WriteForever(location_, fds[1]);
    }
    close(fds[1]);
    // Wait for the writer's first acknowledgement, however slow the disk, so every round
    // kills a writer in full swing; then kill it somewhere in the next few applies.
    pollfd ready = {fds[0], POLLIN, 0};
    const bool acked_once = poll(&ready, 1, 20'000) == 1 &&
                            read(fds[0], &last_acked, sizeof(last_acked)) == sizeof(last_acked);
    if (acked_once) {
      std::this_thread::sleep_for(std::chrono::microseconds(random() % 60'000));
    }
    ASSERT_EQ(kill(child, SIGKILL), 0);
    int wait_status = 0;
    ASSERT_EQ(waitpid(child, &wait_status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wait_status))
        << "the writer stopped by itself with exit code " << WEXITSTATUS(wait_status);
    uint64_t acked = 0;
    while (read(fds[0], &acked, sizeof(acked)) == sizeof(acked)) {
      last_acked = acked;
    }
    close(fds[0]);
    ASSERT_TRUE(acked_once) << "the writer acknowledged nothing within 20 s";

    absl::StatusOr<StoredTopology> stored = Store().Load();
    ASSERT_TRUE(stored.ok()) << stored.status();
    SCOPED_TRACE(absl::StrCat("round ", round, ": stored version ", stored->version,
                              ", last acknowledged ", last_acked));
    EXPECT_GE(stored->version, last_acked);  // no acknowledged change is lost
    kills_after_commit += stored->version > last_acked ? 1 : 0;
    const v1::Topology expected =
        stored->version == 0 ? v1::Topology() : Versioned(stored->version);
    std::string differences;
    google::protobuf::util::MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&differences);
    EXPECT_TRUE(differencer.Compare(expected, stored->topology)) << differences;
    if (HasFailure()) {
      return;
    }
    Close();  // the next writer owns the file alone, as after a real crash
  }
  RecordProperty("kills_after_commit", static_cast<int>(kills_after_commit));
}

TEST_P(StoreCrashTest, ConcurrentCallersAreSerialized) {
  ASSERT_TRUE(Store().Apply(ReferenceTopology(), false).ok());
  constexpr int kThreads = 3;
  constexpr int kChangesPerThread = 8;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kChangesPerThread; ++i) {
        v1::Topology entry;
        v1::Stamp* stamp = entry.add_stamps();
        stamp->set_name(absl::StrCat("stamp-", t, "-", i));
        EXPECT_TRUE(Store().Create(entry, false).ok());
        v1::UsageBatch batch;
        batch.set_agent_id(absl::StrCat("agent-", t));
        batch.set_sequence(static_cast<uint64_t>(i));
        v1::UsageAggregate* aggregate = batch.add_aggregates();
        aggregate->set_tenant("t");
        aggregate->set_requests(1);
        EXPECT_TRUE(Store().StoreUsage(batch).ok());
        EXPECT_TRUE(Store().Load().ok());
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  absl::StatusOr<StoredTopology> stored = Store().Load();
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->version, 1u + kThreads * kChangesPerThread);
  EXPECT_EQ(stored->topology.stamps_size(),
            ReferenceTopology().stamps_size() + kThreads * kChangesPerThread);
  absl::StatusOr<v1::UsageQueryResponse> usage = Store().QueryUsage(v1::UsageQuery());
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->rows_size(), 1);
  EXPECT_EQ(usage->rows(0).requests(), static_cast<uint64_t>(kThreads * kChangesPerThread));
}

// Two stores on one database are two replicas: changes through both at once each land whole,
// one after the other (versions 2..N+1, one history row each), none lost to the race.
TEST_P(StoreCrashTest, TwoStoresOnOneDatabaseSerializeTheirChanges) {
  ASSERT_TRUE(Store().Apply(ReferenceTopology(), false).ok());
  absl::StatusOr<std::unique_ptr<TopologyStore>> other = TopologyStore::Open(location_);
  ASSERT_TRUE(other.ok()) << other.status();
  constexpr int kChangesPerStore = 12;
  std::vector<std::thread> threads;
  for (TopologyStore* store : {&Store(), other->get()}) {
    threads.emplace_back([store, kChangesPerStore] {
      for (int i = 0; i < kChangesPerStore; ++i) {
        v1::Topology entry;
        entry.add_stamps()->set_name(
            absl::StrCat("stamp-", reinterpret_cast<uintptr_t>(store) % 997, "-", i));
        absl::StatusOr<v1::ApplyResponse> created = store->Create(entry, false);
        EXPECT_TRUE(created.ok()) << created.status();
        absl::StatusOr<KeyMaterial> key = store->RotateKey("checkout-assistant", "prod", "");
        EXPECT_TRUE(key.ok()) << key.status();
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  for (TopologyStore* store : {&Store(), other->get()}) {
    absl::StatusOr<StoredTopology> stored = store->Load();
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->version, 1u + 2 * 2 * kChangesPerStore);
    EXPECT_EQ(stored->topology.stamps_size(),
              ReferenceTopology().stamps_size() + 2 * kChangesPerStore);
    int keys = 0;
    for (const v1::Tenant& tenant : stored->topology.tenants()) {
      keys += tenant.name() == "checkout-assistant" ? tenant.api_keys_size() : 0;
    }
    EXPECT_EQ(keys, 1 + 2 * kChangesPerStore) << "every rotation kept, named apart";
  }
  EXPECT_EQ(test::QueryText(Db(), "SELECT count(*) FROM topology_history"),
            absl::StrCat(1 + 2 * 2 * kChangesPerStore));
}

SPILLWAY_STORE_BACKENDS(StoreCrashTest);

}  // namespace
}  // namespace spillway
