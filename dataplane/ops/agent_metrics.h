// Prometheus metrics of one agent: per route, requests by status, attempts, latency
// histogram and tokens; per tenant, the metered usage. Each I/O thread counts into a shard
// of its own (one uncontended lock per request); GET /metrics merges the shards.
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
#include "absl/synchronization/mutex.h"
#include "dataplane/usage/access_log.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// Upper bounds of the request-duration histogram, milliseconds (+Inf is implicit).
inline constexpr std::array<int64_t, 13> kLatencyBucketsMs = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

struct RouteCounters {
  std::vector<std::pair<unsigned, uint64_t>> by_status;  // few distinct codes: a short list
  uint64_t attempts = 0;
  std::array<uint64_t, kLatencyBucketsMs.size() + 1> latency_buckets{};  // last: +Inf
  double latency_ms_sum = 0;
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
  // The Prometheus text exposition (format 0.0.4). `gauges` are extra name/value lines.
  std::string Render(const std::vector<std::pair<std::string, double>>& gauges) const;

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
};

}  // namespace spillway
