// See usage_meter.h.
#include "dataplane/usage/usage_meter.h"

#include <cmath>

#include "absl/hash/hash.h"

namespace spillway {
namespace {

uint64_t Count(int64_t tokens) { return tokens > 0 ? static_cast<uint64_t>(tokens) : 0; }

}  // namespace

void UsageSums::Add(const UsageSums& other) {
  requests += other.requests;
  prompt_tokens += other.prompt_tokens;
  completion_tokens += other.completion_tokens;
  cached_tokens += other.cached_tokens;
  total_tokens += other.total_tokens;
  attempts += other.attempts;
  latency_ms_sum += other.latency_ms_sum;
}

std::size_t UsageKeyHash::operator()(const UsageKeyView& k) const {
  return absl::HashOf(k.minute_unix_ms, k.tenant, k.route, k.backend, k.instance, k.region,
                      k.status);
}

void UsageShard::Add(const AccessRecord& record, int64_t now_unix_ms) {
  UsageKeyView key;
  key.minute_unix_ms = now_unix_ms - now_unix_ms % kUsageMinuteMs;
  key.tenant = record.tenant;
  // A route the agent answered 404 for does not exist: counting it under the client's
  // spelling would let any client mint rows, so it is counted under an empty route.
  key.route = record.backend.empty() && record.status == 404 ? absl::string_view() : record.route;
  key.backend = record.backend;
  key.instance = record.instance;
  key.region = record.region;
  key.status = record.status;
  UsageSums sums;
  sums.requests = 1;
  sums.prompt_tokens = Count(record.usage.prompt_tokens);
  sums.completion_tokens = Count(record.usage.completion_tokens);
  sums.cached_tokens = Count(record.usage.cached_tokens);
  sums.total_tokens = Count(record.usage.total_tokens);
  sums.attempts = Count(record.attempts);
  sums.latency_ms_sum =
      record.latency_ms > 0 ? static_cast<uint64_t>(std::llround(record.latency_ms)) : 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sums_.find(key);
  if (it == sums_.end()) {
    it = sums_.emplace(UsageKey(key), UsageSums{}).first;
  }
  it->second.Add(sums);
}

UsageShard* UsageMeter::AddShard() {
  absl::MutexLock lock(&mu_);
  shards_.push_back(std::make_unique<UsageShard>());
  return shards_.back().get();
}

v1::TrafficReport UsageMeter::CollectTraffic() {
  v1::TrafficReport report;
  absl::MutexLock lock(&mu_);
  for (const std::unique_ptr<UsageShard>& shard : shards_) {
    shard->traffic_.TakeInto(report);
  }
  return report;
}

std::vector<v1::UsageAggregate> UsageMeter::Collect() {
  UsageMap merged;
  {
    absl::MutexLock lock(&mu_);
    for (const std::unique_ptr<UsageShard>& shard : shards_) {
      UsageMap taken;
      {
        std::lock_guard<std::mutex> shard_lock(shard->mu_);
        taken.swap(shard->sums_);
      }
      if (merged.empty()) {
        merged.swap(taken);
        continue;
      }
      for (auto& [key, sums] : taken) {
        auto found = merged.find(key.view());
        if (found == merged.end()) {
          merged.emplace(key, sums);
        } else {
          found->second.Add(sums);
        }
      }
    }
  }
  std::vector<v1::UsageAggregate> aggregates;
  aggregates.reserve(merged.size());
  for (const auto& [key, sums] : merged) {
    v1::UsageAggregate& a = aggregates.emplace_back();
    a.set_minute_unix_ms(key.minute_unix_ms);
    a.set_tenant(key.tenant);
    a.set_route(key.route);
    a.set_backend_id(key.backend);
    a.set_instance(key.instance);
    a.set_region(key.region);
    a.set_status(key.status);
    a.set_requests(sums.requests);
    a.set_prompt_tokens(sums.prompt_tokens);
    a.set_completion_tokens(sums.completion_tokens);
    a.set_cached_tokens(sums.cached_tokens);
    a.set_total_tokens(sums.total_tokens);
    a.set_attempts(sums.attempts);
    a.set_latency_ms_sum(sums.latency_ms_sum);
  }
  return aggregates;
}

}  // namespace spillway
