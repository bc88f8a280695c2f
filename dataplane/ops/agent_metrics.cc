// See agent_metrics.h.
#include "dataplane/ops/agent_metrics.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/proto_yaml.h"
#include "dataplane/usage/usage_shipper.h"

namespace spillway {
namespace {

// Label values are route, tenant and backend names (validated identifiers), but a route
// name comes from the client's path when it names no route: escape per the format.
std::string Label(absl::string_view value) {
  return absl::StrReplaceAll(value.substr(0, 200), {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

void Family(std::string& out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// A histogram family's series for one route; `ms` bounds exported as seconds.
void AppendHistogram(std::string& out, absl::string_view name, absl::string_view route_label,
                     const DurationHistogram& histogram) {
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < histogram.buckets.size(); ++i) {
    cumulative += histogram.buckets[i];
    const std::string le = i < kLatencyBucketsMs.size()
                               ? absl::StrCat(static_cast<double>(kLatencyBucketsMs[i]) / 1000)
                               : "+Inf";
    absl::StrAppend(&out, name, "_bucket{route=\"", route_label, "\",le=\"", le, "\"} ", cumulative,
                    "\n");
  }
  absl::StrAppend(&out, name, "_sum{route=\"", route_label, "\"} ", histogram.sum_ms / 1000, "\n",
                  name, "_count{route=\"", route_label, "\"} ", cumulative, "\n");
}

std::string SkuName(v1::Sku sku) {
  const google::protobuf::EnumValueDescriptor* value = v1::Sku_descriptor()->FindValueByNumber(sku);
  return value == nullptr ? "" : EnumYamlName(value);
}

// Usable and not blocked (circuit open, throttled) at `now`: what /readyz counts as live.
bool Available(const SnapshotBackend& backend, SteadyTime now) {
  return backend.unusable_reason.empty() && backend.state->breaker.AvailableAt() <= now;
}

}  // namespace

void DurationHistogram::Observe(double ms) {
  const auto bucket = std::lower_bound(kLatencyBucketsMs.begin(), kLatencyBucketsMs.end(),
                                       static_cast<int64_t>(ms + 0.999999));
  ++buckets[static_cast<std::size_t>(bucket - kLatencyBucketsMs.begin())];
  sum_ms += ms;
}

void DurationHistogram::Merge(const DurationHistogram& other) {
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    buckets[i] += other.buckets[i];
  }
  sum_ms += other.sum_ms;
}

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
  for (const TierCount& tier : other.by_tier) {
    auto it = std::find_if(by_tier.begin(), by_tier.end(), [&](const TierCount& entry) {
      return entry.tier == tier.tier && entry.pool == tier.pool;
    });
    if (it == by_tier.end()) {
      by_tier.push_back(tier);
    } else {
      it->requests += tier.requests;
    }
  }
  attempts += other.attempts;
  by_pin += other.by_pin;
  by_probe += other.by_probe;
  latency.Merge(other.latency);
  first_byte.Merge(other.first_byte);
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
  if (!record.pool.empty()) {
    auto tier =
        std::find_if(counters.by_tier.begin(), counters.by_tier.end(), [&](const TierCount& entry) {
          return entry.tier == record.tier && entry.pool == record.pool;
        });
    if (tier == counters.by_tier.end()) {
      counters.by_tier.push_back({record.tier, std::string(record.pool), 1});
    } else {
      ++tier->requests;
    }
  }
  counters.attempts += static_cast<uint64_t>(record.attempts);
  if (!record.routed_by.empty()) {
    ++(record.routed_by == "pin" ? counters.by_pin : counters.by_probe);
  }
  counters.latency.Observe(record.latency_ms);
  if (record.first_byte_ms >= 0) {
    counters.first_byte.Observe(record.first_byte_ms);
  }
  counters.prompt_tokens += static_cast<uint64_t>(std::max<int64_t>(0, record.usage.prompt_tokens));
  counters.completion_tokens +=
      static_cast<uint64_t>(std::max<int64_t>(0, record.usage.completion_tokens));
}

MetricsShard* AgentMetrics::AddShard() {
  absl::MutexLock lock(&mu_);
  shards_.push_back(std::make_unique<MetricsShard>());
  return shards_.back().get();
}

void AgentMetrics::WatchUsageShipper(UsageShipper* shipper) {
  absl::MutexLock lock(&mu_);
  usage_shipper_ = shipper;
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

std::string AgentMetrics::Render(const std::vector<Gauge>& gauges, const RoutingSnapshot* snapshot,
                                 SteadyTime now) const {
  std::map<std::string, RouteCounters> routes;  // sorted: stable output
  std::map<std::pair<std::string, std::string>, TenantUsage> usage;
  UsageShipper* shipper = nullptr;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& shard : shards_) {
      const std::lock_guard<std::mutex> shard_lock(shard->mu_);
      for (const auto& [route, counters] : shard->routes_) {
        routes[route].Merge(counters);
      }
    }
    usage.insert(usage_.begin(), usage_.end());
    shipper = usage_shipper_;
  }
  std::string out;
  Family(out, "spillway_requests_total", "counter",
         "Client requests answered, by route and HTTP status returned.");
  for (const auto& [route, counters] : routes) {
    auto by_status = counters.by_status;
    std::sort(by_status.begin(), by_status.end());
    for (const auto& [status, count] : by_status) {
      absl::StrAppend(&out, "spillway_requests_total{route=\"", Label(route), "\",code=\"", status,
                      "\"} ", count, "\n");
    }
  }
  Family(out, "spillway_tier_requests_total", "counter",
         "Requests a backend answered, by route and the tier that answered (tier: its place in "
         "the route's split, 0 the first choice; pool: the tier's pool). Spillover shows as "
         "tiers above 0.");
  for (const auto& [route, counters] : routes) {
    auto by_tier = counters.by_tier;
    std::sort(by_tier.begin(), by_tier.end(), [](const TierCount& a, const TierCount& b) {
      return std::tie(a.tier, a.pool) < std::tie(b.tier, b.pool);
    });
    for (const TierCount& tier : by_tier) {
      absl::StrAppend(&out, "spillway_tier_requests_total{route=\"", Label(route), "\",tier=\"",
                      tier.tier, "\",pool=\"", Label(tier.pool), "\"} ", tier.requests, "\n");
    }
  }
  Family(out, "spillway_upstream_attempts_total", "counter",
         "Backend attempts made for client requests (failovers make more than one per request).");
  for (const auto& [route, counters] : routes) {
    absl::StrAppend(&out, "spillway_upstream_attempts_total{route=\"", Label(route), "\"} ",
                    counters.attempts, "\n");
  }
  Family(out, "spillway_stateful_requests_total", "counter",
         "Requests on a stateful object (docs/pinning.md), by how its backend was found: a pin, "
         "or a probe of the backends that may hold it.");
  for (const auto& [route, counters] : routes) {
    if (counters.by_pin + counters.by_probe > 0) {
      const std::string label = Label(route);
      absl::StrAppend(&out, "spillway_stateful_requests_total{route=\"", label, "\",by=\"pin\"} ",
                      counters.by_pin, "\nspillway_stateful_requests_total{route=\"", label,
                      "\",by=\"probe\"} ", counters.by_probe, "\n");
    }
  }
  Family(out, "spillway_request_duration_seconds", "histogram",
         "Time from a request's arrival to its last byte, seconds.");
  for (const auto& [route, counters] : routes) {
    AppendHistogram(out, "spillway_request_duration_seconds", Label(route), counters.latency);
  }
  Family(out, "spillway_time_to_first_byte_seconds", "histogram",
         "Time from a request's arrival to the answering backend's response head (the first "
         "byte relayed), seconds; requests no backend answered are not counted.");
  for (const auto& [route, counters] : routes) {
    AppendHistogram(out, "spillway_time_to_first_byte_seconds", Label(route), counters.first_byte);
  }
  Family(out, "spillway_tokens_total", "counter",
         "Tokens the backends reported, by route and kind (prompt, completion).");
  for (const auto& [route, counters] : routes) {
    const std::string label = Label(route);
    absl::StrAppend(&out, "spillway_tokens_total{route=\"", label, "\",kind=\"prompt\"} ",
                    counters.prompt_tokens, "\nspillway_tokens_total{route=\"", label,
                    "\",kind=\"completion\"} ", counters.completion_tokens, "\n");
  }
  if (!usage.empty()) {
    Family(out, "spillway_tenant_tokens_total", "counter",
           "Metered tokens per tenant and route, for chargeback (kind: prompt, completion, "
           "cached).");
    for (const auto& [key, totals] : usage) {
      const std::string labels =
          absl::StrCat("tenant=\"", Label(key.first), "\",route=\"", Label(key.second), "\"");
      absl::StrAppend(&out, "spillway_tenant_tokens_total{", labels, ",kind=\"prompt\"} ",
                      totals.prompt_tokens, "\nspillway_tenant_tokens_total{", labels,
                      ",kind=\"completion\"} ", totals.completion_tokens,
                      "\nspillway_tenant_tokens_total{", labels, ",kind=\"cached\"} ",
                      totals.cached_tokens, "\n");
    }
    Family(out, "spillway_tenant_requests_total", "counter",
           "Metered requests per tenant and route.");
    for (const auto& [key, totals] : usage) {
      absl::StrAppend(&out, "spillway_tenant_requests_total{tenant=\"", Label(key.first),
                      "\",route=\"", Label(key.second), "\"} ", totals.requests, "\n");
    }
  }
  if (snapshot != nullptr) {
    // Per backend of the table served: counters live in its BackendState, which outlives
    // tables, so a new table does not reset them.
    const std::vector<SnapshotBackend>& backends = snapshot->backends();
    std::vector<std::string> backend_labels;
    backend_labels.reserve(backends.size());
    for (const SnapshotBackend& backend : backends) {
      backend_labels.push_back(absl::StrCat("backend=\"", Label(backend.config->id()), "\",sku=\"",
                                            SkuName(backend.config->sku()), "\""));
    }
    Family(out, "spillway_backend_attempts_total", "counter",
           "Attempts sent to each backend of the routing table (sku: its deployment SKU).");
    for (std::size_t i = 0; i < backends.size(); ++i) {
      absl::StrAppend(&out, "spillway_backend_attempts_total{", backend_labels[i], "} ",
                      backends[i].state->attempts.load(std::memory_order_relaxed), "\n");
    }
    Family(out, "spillway_backend_throttled_total", "counter",
           "429 answers from each backend of the routing table.");
    for (std::size_t i = 0; i < backends.size(); ++i) {
      absl::StrAppend(&out, "spillway_backend_throttled_total{", backend_labels[i], "} ",
                      backends[i].state->throttled.load(std::memory_order_relaxed), "\n");
    }
    Family(out, "spillway_backend_available", "gauge",
           "1 when a backend may be sent to now (usable, circuit not open, not throttled).");
    for (std::size_t i = 0; i < backends.size(); ++i) {
      absl::StrAppend(&out, "spillway_backend_available{", backend_labels[i], "} ",
                      Available(backends[i], now) ? 1 : 0, "\n");
    }
    Family(out, "spillway_route_available_backends", "gauge",
           "Backends of each route that may be sent to now; 0: the route cannot be served.");
    std::vector<std::pair<std::string, int>> by_route;
    std::vector<bool> seen(backends.size());
    for (const v1::CompiledRoute& route : snapshot->table().routes()) {
      std::fill(seen.begin(), seen.end(), false);
      int available = 0;
      for (const v1::CompiledSplit& split : route.splits()) {
        for (const v1::CompiledTier& tier : split.tiers()) {
          for (const v1::TierMember& member : tier.members()) {
            if (member.backend() < backends.size() && !seen[member.backend()]) {
              seen[member.backend()] = true;
              available += Available(backends[member.backend()], now) ? 1 : 0;
            }
          }
        }
      }
      by_route.emplace_back(route.name(), available);
    }
    std::sort(by_route.begin(), by_route.end());
    for (const auto& [route, available] : by_route) {
      absl::StrAppend(&out, "spillway_route_available_backends{route=\"", Label(route), "\"} ",
                      available, "\n");
    }
  }
  if (shipper != nullptr) {
    Family(out, "spillway_usage_spool_batches", "gauge",
           "Sealed usage batches in the spool, waiting for the control plane's ack.");
    absl::StrAppend(&out, "spillway_usage_spool_batches ", shipper->spooled_batches(), "\n");
    Family(out, "spillway_usage_spool_bytes", "gauge", "Bytes of the usage spool's batch files.");
    absl::StrAppend(&out, "spillway_usage_spool_bytes ", shipper->spooled_bytes(), "\n");
  }
  for (const Gauge& gauge : gauges) {
    Family(out, gauge.name, "gauge", gauge.help);
    absl::StrAppend(&out, gauge.name, " ", gauge.value, "\n");
  }
  return out;
}

}  // namespace spillway
