// See agent_metrics.h.
#include "dataplane/ops/agent_metrics.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace spillway {
namespace {

// Label values are route, tenant and backend names (validated identifiers), but a route
// name comes from the client's path when it names no route: escape per the format.
std::string Label(absl::string_view value) {
  return absl::StrReplaceAll(value.substr(0, 200), {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

void Help(std::string& out, absl::string_view name, absl::string_view type,
          absl::string_view help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

void RouteCounters::Merge(const RouteCounters& other) {
  for (const auto& [status, count] : other.by_status) {
    auto it = std::find_if(by_status.begin(), by_status.end(),
                           [status = status](const auto& entry) { return entry.first == status; });
    if (it == by_status.end()) {
      by_status.emplace_back(status, count);
    } else {
      it->second += count;
    }
  }
  attempts += other.attempts;
  by_pin += other.by_pin;
  by_probe += other.by_probe;
  for (std::size_t i = 0; i < latency_buckets.size(); ++i) {
    latency_buckets[i] += other.latency_buckets[i];
  }
  latency_ms_sum += other.latency_ms_sum;
  prompt_tokens += other.prompt_tokens;
  completion_tokens += other.completion_tokens;
}

void MetricsShard::Record(const AccessRecord& record) {
  // Requests refused before a route was named count under route "".
  const std::lock_guard<std::mutex> lock(mu_);
  auto it = routes_.find(record.route);
  if (it == routes_.end()) {
    // A client can name any route; only routes the agent knows, or a capped number of
    // unknown ones, get their own series.
    if (routes_.size() >= 1000) {
      it = routes_.try_emplace("(other)").first;
    } else {
      it = routes_.try_emplace(std::string(record.route)).first;
    }
  }
  RouteCounters& counters = it->second;
  auto status = std::find_if(counters.by_status.begin(), counters.by_status.end(),
                             [&](const auto& entry) { return entry.first == record.status; });
  if (status == counters.by_status.end()) {
    counters.by_status.emplace_back(record.status, 1);
  } else {
    ++status->second;
  }
  counters.attempts += static_cast<uint64_t>(record.attempts);
  if (!record.routed_by.empty()) {
    ++(record.routed_by == "pin" ? counters.by_pin : counters.by_probe);
  }
  const auto bucket = std::lower_bound(kLatencyBucketsMs.begin(), kLatencyBucketsMs.end(),
                                       static_cast<int64_t>(record.latency_ms + 0.999999));
  ++counters.latency_buckets[static_cast<std::size_t>(bucket - kLatencyBucketsMs.begin())];
  counters.latency_ms_sum += record.latency_ms;
  counters.prompt_tokens += static_cast<uint64_t>(std::max<int64_t>(0, record.usage.prompt_tokens));
  counters.completion_tokens +=
      static_cast<uint64_t>(std::max<int64_t>(0, record.usage.completion_tokens));
}

MetricsShard* AgentMetrics::AddShard() {
  absl::MutexLock lock(&mu_);
  shards_.push_back(std::make_unique<MetricsShard>());
  return shards_.back().get();
}

void AgentMetrics::AddUsage(const std::vector<v1::UsageAggregate>& usage) {
  absl::MutexLock lock(&mu_);
  for (const v1::UsageAggregate& aggregate : usage) {
    TenantUsage& totals = usage_[{aggregate.tenant(), aggregate.route()}];
    totals.requests += aggregate.requests();
    totals.prompt_tokens += aggregate.prompt_tokens();
    totals.completion_tokens += aggregate.completion_tokens();
    totals.cached_tokens += aggregate.cached_tokens();
  }
}

std::string AgentMetrics::Render(const std::vector<std::pair<std::string, double>>& gauges) const {
  std::map<std::string, RouteCounters> routes;  // sorted: stable output
  std::map<std::pair<std::string, std::string>, TenantUsage> usage;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& shard : shards_) {
      const std::lock_guard<std::mutex> shard_lock(shard->mu_);
      for (const auto& [route, counters] : shard->routes_) {
        routes[route].Merge(counters);
      }
    }
    usage.insert(usage_.begin(), usage_.end());
  }
  std::string out;
  Help(out, "spillway_requests_total", "counter",
       "Client requests answered, by route and HTTP status returned.");
  for (const auto& [route, counters] : routes) {
    auto by_status = counters.by_status;
    std::sort(by_status.begin(), by_status.end());
    for (const auto& [status, count] : by_status) {
      absl::StrAppend(&out, "spillway_requests_total{route=\"", Label(route), "\",code=\"", status,
                      "\"} ", count, "\n");
    }
  }
  Help(out, "spillway_upstream_attempts_total", "counter",
       "Backend attempts made for client requests (failovers make more than one per request).");
  for (const auto& [route, counters] : routes) {
    absl::StrAppend(&out, "spillway_upstream_attempts_total{route=\"", Label(route), "\"} ",
                    counters.attempts, "\n");
  }
  Help(out, "spillway_stateful_requests_total", "counter",
       "Requests on a stateful object (docs/pinning.md), by how its backend was found: a pin, or "
       "a probe of the backends that may hold it.");
  for (const auto& [route, counters] : routes) {
    if (counters.by_pin + counters.by_probe > 0) {
      const std::string label = Label(route);
      absl::StrAppend(&out, "spillway_stateful_requests_total{route=\"", label, "\",by=\"pin\"} ",
                      counters.by_pin, "\nspillway_stateful_requests_total{route=\"", label,
                      "\",by=\"probe\"} ", counters.by_probe, "\n");
    }
  }
  Help(out, "spillway_request_duration_ms", "histogram",
       "Time from a request's arrival to its last byte, milliseconds.");
  for (const auto& [route, counters] : routes) {
    const std::string label = Label(route);
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counters.latency_buckets.size(); ++i) {
      cumulative += counters.latency_buckets[i];
      const std::string le =
          i < kLatencyBucketsMs.size() ? absl::StrCat(kLatencyBucketsMs[i]) : "+Inf";
      absl::StrAppend(&out, "spillway_request_duration_ms_bucket{route=\"", label, "\",le=\"", le,
                      "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "spillway_request_duration_ms_sum{route=\"", label, "\"} ",
                    counters.latency_ms_sum, "\nspillway_request_duration_ms_count{route=\"", label,
                    "\"} ", cumulative, "\n");
  }
  Help(out, "spillway_tokens_total", "counter",
       "Tokens the backends reported, by route and kind (prompt, completion).");
  for (const auto& [route, counters] : routes) {
    const std::string label = Label(route);
    absl::StrAppend(&out, "spillway_tokens_total{route=\"", label, "\",kind=\"prompt\"} ",
                    counters.prompt_tokens, "\nspillway_tokens_total{route=\"", label,
                    "\",kind=\"completion\"} ", counters.completion_tokens, "\n");
  }
  if (!usage.empty()) {
    Help(out, "spillway_tenant_tokens_total", "counter",
         "Metered tokens per tenant and route, for chargeback (kind: prompt, completion, cached).");
    for (const auto& [key, totals] : usage) {
      const std::string labels =
          absl::StrCat("tenant=\"", Label(key.first), "\",route=\"", Label(key.second), "\"");
      absl::StrAppend(&out, "spillway_tenant_tokens_total{", labels, ",kind=\"prompt\"} ",
                      totals.prompt_tokens, "\nspillway_tenant_tokens_total{", labels,
                      ",kind=\"completion\"} ", totals.completion_tokens,
                      "\nspillway_tenant_tokens_total{", labels, ",kind=\"cached\"} ",
                      totals.cached_tokens, "\n");
    }
    Help(out, "spillway_tenant_requests_total", "counter",
         "Metered requests per tenant and route.");
    for (const auto& [key, totals] : usage) {
      absl::StrAppend(&out, "spillway_tenant_requests_total{tenant=\"", Label(key.first),
                      "\",route=\"", Label(key.second), "\"} ", totals.requests, "\n");
    }
  }
  for (const auto& [name, value] : gauges) {
    absl::StrAppend(&out, "# TYPE ", name, " gauge\n", name, " ", value, "\n");
  }
  return out;
}

}  // namespace spillway
