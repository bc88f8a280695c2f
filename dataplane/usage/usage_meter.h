// Per-minute usage sums for chargeback, keyed by (minute, tenant, route, backend, instance,
// region, status). Each I/O thread adds to its own shard, so requests never contend; the
// shard's lock is taken by its thread per request and by the flusher once per flush.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/usage/access_log.h"
#include "dataplane/usage/traffic_slots.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

inline constexpr int64_t kUsageMinuteMs = 60'000;

struct UsageKeyView {
  int64_t minute_unix_ms = 0;
  absl::string_view tenant;
  absl::string_view route;
  absl::string_view backend;
  absl::string_view instance;
  absl::string_view region;
  uint32_t status = 0;
  bool operator==(const UsageKeyView&) const = default;
};

struct UsageKey {
  explicit UsageKey(const UsageKeyView& v)
      : minute_unix_ms(v.minute_unix_ms),
        tenant(v.tenant),
        route(v.route),
        backend(v.backend),
        instance(v.instance),
        region(v.region),
        status(v.status) {}
  UsageKeyView view() const {
    return {minute_unix_ms, tenant, route, backend, instance, region, status};
  }
  int64_t minute_unix_ms;
  std::string tenant;
  std::string route;
  std::string backend;
  std::string instance;
  std::string region;
  uint32_t status;
};

struct UsageSums {
  uint64_t requests = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t cached_tokens = 0;
  uint64_t total_tokens = 0;
  uint64_t attempts = 0;
  uint64_t latency_ms_sum = 0;
  void Add(const UsageSums& other);
};

// Lookups take a view, so a request whose key exists this minute allocates nothing.
struct UsageKeyHash {
  using is_transparent = void;
  std::size_t operator()(const UsageKeyView& k) const;
  std::size_t operator()(const UsageKey& k) const { return (*this)(k.view()); }
};
struct UsageKeyEq {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return View(a) == View(b);
  }
  static UsageKeyView View(const UsageKeyView& k) { return k; }
  static UsageKeyView View(const UsageKey& k) { return k.view(); }
};

using UsageMap = absl::flat_hash_map<UsageKey, UsageSums, UsageKeyHash, UsageKeyEq>;

class UsageShard {
 public:
  // Counts one finished request at wall-clock `now_unix_ms`.
  void Add(const AccessRecord& record, int64_t now_unix_ms);
  // Every finished request, metered or not, in the 100 ms slots drills read.
  void AddTraffic(const AccessRecord& record, int64_t now_unix_ms) {
    traffic_.Add(record.backend, record.status, record.priority, record.attempts > 1, now_unix_ms);
  }

 private:
  friend class UsageMeter;
  TrafficSlots traffic_;
  // A plain futex mutex: uncontended but for one flush per interval, and about a fifth of
  // absl::Mutex's instructions per lock/unlock pair on this path (callgrind).
  std::mutex mu_;
  UsageMap sums_ ABSL_GUARDED_BY(mu_);
};

class UsageMeter {
 public:
  // One per I/O thread, created at start; lives as long as the meter.
  UsageShard* AddShard();
  // Moves out everything counted so far, merged across shards.
  std::vector<v1::UsageAggregate> Collect();
  // Moves out every shard's traffic slots, as one report.
  v1::TrafficReport CollectTraffic();

 private:
  absl::Mutex mu_;
  std::vector<std::unique_ptr<UsageShard>> shards_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway
