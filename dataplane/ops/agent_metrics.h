// Prometheus metrics of one agent: per route, requests by status and by the tier that served
// them, attempts, latency and time-to-first-byte histograms, tokens; per backend, attempts and
// 429s; per tenant, the metered usage. Each I/O thread counts into a shard of its own (one
// uncontended lock per request); GET /metrics merges the shards.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/usage/access_log.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

class UsageShipper;

// Upper bounds of the duration histograms, milliseconds (+Inf is implicit). Counted in whole
// milliseconds, exported in seconds (Prometheus' base unit): 0.005 ... 300.
inline constexpr std::array<int64_t, 15> kLatencyBucketsMs = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000};

struct DurationHistogram {
  std::array<uint64_t, kLatencyBucketsMs.size() + 1> buckets{};  // last: +Inf
  double sum_ms = 0;

  void Observe(double ms);
  void Merge(const DurationHistogram& other);
};

// Requests one tier of a route answered (tier: its place in the split, pool: its pool).
struct TierCount {
  uint32_t tier = 0;
  std::string pool;
  uint64_t requests = 0;
};

struct RouteCounters {
  std::vector<std::pair<unsigned, uint64_t>> by_status;  // few distinct codes: a short list
  // Few tiers per route: a short list, grown only when a tier answers for the first time.
  std::vector<TierCount> by_tier;
  uint64_t attempts = 0;
  DurationHistogram latency;
  DurationHistogram first_byte;  // only requests a backend answered
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t by_pin = 0;    // requests sent to the backend a pin named
  uint64_t by_probe = 0;  // requests that asked backends for an object no pin placed

  void Merge(const RouteCounters& other);
};

class MetricsShard {
 public:
  void Record(const AccessRecord& record);

 private:
  friend class AgentMetrics;
  std::mutex mu_;
  absl::flat_hash_map<std::string, RouteCounters> routes_ ABSL_GUARDED_BY(mu_);
};

class AgentMetrics {
 public:
  // One per I/O thread, created at start; lives as long as the metrics.
  MetricsShard* AddShard();
  // Adds metered usage (standalone agents drain their usage meter into here; with a
  // control plane it goes there instead).
  void AddUsage(const std::vector<v1::UsageAggregate>& usage);
  // With a control plane: the shipper whose spool /metrics reports (null: none). Set before
  // serving; outlives every scrape.
  void WatchUsageShipper(UsageShipper* shipper);

  struct Gauge {
    absl::string_view name;
    absl::string_view help;
    double value = 0;
  };
  // The Prometheus text exposition (format 0.0.4): the counters, `gauges`, and per backend and
  // route of `snapshot` (the table served now; may be null) what it says at `now`.
  std::string Render(const std::vector<Gauge>& gauges, const RoutingSnapshot* snapshot,
                     SteadyTime now) const;

 private:
  struct TenantUsage {
    uint64_t requests = 0;
    uint64_t prompt_tokens = 0;
    uint64_t completion_tokens = 0;
    uint64_t cached_tokens = 0;
  };
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<MetricsShard>> shards_ ABSL_GUARDED_BY(mu_);
  // (tenant, route) -> totals since start.
  absl::flat_hash_map<std::pair<std::string, std::string>, TenantUsage> usage_ ABSL_GUARDED_BY(mu_);
  UsageShipper* usage_shipper_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace spillway
