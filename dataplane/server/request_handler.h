// The life of one client request after it is parsed: classify the path, authenticate the
// tenant, find the route, read the body's facts, forward through the proxy, log it.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "dataplane/usage/access_log.h"
#include "dataplane/ops/agent_metrics.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/routing/snapshot_source.h"
#include "dataplane/tenants/tenant_limiter.h"
#include "dataplane/usage/usage_meter.h"

namespace spillway {

// Shared by every I/O thread; immutable after start except the counters.
struct AgentContext {
  std::string region;
  ProxyOptions proxy;
  std::chrono::milliseconds client_idle_timeout{60000};
  uint64_t body_limit = 32 * 1024 * 1024;  // Azure accepts large multimodal bodies
  SnapshotSource snapshots;
  AccessLog* access_log = nullptr;
  BackendObserver* backend_observer = nullptr;  // set when a control plane is in use
  TenantLimiter* tenant_limiter = nullptr;      // tenants' TPM/RPM quotas (null: none)
  UsageMeter* usage_meter = nullptr;            // per-minute usage for chargeback
  AgentMetrics* metrics = nullptr;              // GET /metrics (null: none)
  std::atomic<int64_t> requests_in_flight{0};
  std::atomic<bool> draining{false};
};

// One per I/O thread: holds that thread's snapshot cache, connection pool and random.
class RequestHandler {
 public:
  RequestHandler(AgentContext& context, UpstreamPool& pool, uint64_t seed)
      : context_(context),
        pool_(pool),
        snapshot_(context.snapshots),
        random_(seed),
        proxy_(context.proxy, context.backend_observer),
        quotas_(context.tenant_limiter),
        usage_shard_(context.usage_meter != nullptr ? context.usage_meter->AddShard() : nullptr),
        metrics_shard_(context.metrics != nullptr ? context.metrics->AddShard() : nullptr) {}

  // Answers one request on `client`; returns whether the connection may serve another.
  asio::awaitable<bool> Handle(beast::tcp_stream& client,
                               const http::request<http::string_body>& request);

 private:
  // Takes the error by value: GCC 12 mishandles temporaries bound to references across
  // co_await.
  asio::awaitable<bool> Reply(beast::tcp_stream& client, ErrorReply error, bool keep_alive,
                              AccessRecord& record, SteadyTime start);
  asio::awaitable<bool> ServeLocal(beast::tcp_stream& client,
                                   const http::request<http::string_body>& request, unsigned status,
                                   std::string body, const char* content_type);
  std::string StatusJson(const RoutingSnapshot* snapshot) const;
  // Adds a finished request to this thread's metrics and usage sums (if it is metered).
  void Meter(const AccessRecord& record);
  bool Ready(const RoutingSnapshot* snapshot, std::string* why) const;

  AgentContext& context_;
  UpstreamPool& pool_;
  CachedSnapshot snapshot_;
  FastRandom random_;
  Proxy proxy_;
  TenantQuotaCache quotas_;
  UsageShard* usage_shard_;      // this thread's part of the usage meter; null: not metering
  MetricsShard* metrics_shard_;  // this thread's part of the metrics; null: none
};

}  // namespace spillway
