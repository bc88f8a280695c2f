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
#include <optional>
#include <string>

#include "dataplane/http/local_reply.h"
#include "dataplane/ops/agent_metrics.h"
#include "dataplane/ops/ops_endpoints.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/routing/api_path.h"
#include "dataplane/routing/snapshot_source.h"
#include "dataplane/tenants/quota_claim.h"
#include "dataplane/tenants/tenant_limiter.h"
#include "dataplane/usage/access_log.h"
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
        ops_(context.region, context.requests_in_flight, context.tenant_limiter, context.metrics),
        quotas_(context.tenant_limiter),
        usage_shard_(context.usage_meter != nullptr ? context.usage_meter->AddShard() : nullptr),
        metrics_shard_(context.metrics != nullptr ? context.metrics->AddShard() : nullptr) {}

  // Answers one request on `client`; returns whether the connection may serve another.
  asio::awaitable<bool> Handle(beast::tcp_stream& client,
                               const http::request<http::string_body>& request);

 private:
  // Everything between parsing and forwarding: fills `proxy_request` (and `quota`, for a
  // tenant with limits) or returns the error to answer with instead.
  std::optional<ErrorReply> Admit(const http::request<http::string_body>& request,
                                  const ApiPath& path, const RoutingSnapshot* snapshot,
                                  bool keep_alive, AccessRecord& record,
                                  ProxyRequest& proxy_request, QuotaClaim& quota);
  // Admit's steps, in order; each returns the error when the request goes no further.
  // Unknown paths, or no routing table yet:
  std::optional<ErrorReply> CheckPath(const http::request<http::string_body>& request,
                                      const ApiPath& path, const RoutingSnapshot* snapshot) const;
  // The client's tenant (null with open access), from its key.
  std::optional<ErrorReply> Authenticate(const http::request<http::string_body>& request,
                                         const RoutingSnapshot& snapshot,
                                         const SnapshotTenant*& tenant, AccessRecord& record) const;
  // The body's facts and the route it names (in the path, or on /openai/v1 in the body),
  // which the tenant must be allowed to use.
  std::optional<ErrorReply> Route(const http::request<http::string_body>& request,
                                  const ApiPath& path, const RoutingSnapshot& snapshot,
                                  const SnapshotTenant* tenant, AccessRecord& record,
                                  ProxyRequest& proxy_request) const;
  // The tenant's TPM/RPM quota: charged up front, corrected once the response has ended.
  std::optional<ErrorReply> ClaimQuota(const http::request<http::string_body>& request,
                                       const SnapshotTenant& tenant, ProxyRequest& proxy_request,
                                       QuotaClaim& quota);
  // Takes the error by value: GCC 12 mishandles temporaries bound to references across
  // co_await.
  asio::awaitable<bool> Reply(beast::tcp_stream& client, ErrorReply error, bool keep_alive,
                              AccessRecord& record, SteadyTime start);
  // Logs and meters a forwarded request.
  void Record(const ProxyOutcome& outcome, SteadyTime start, AccessRecord& record);
  // Adds a finished request to this thread's metrics and usage sums (if it is metered).
  void Meter(const AccessRecord& record);

  AgentContext& context_;
  UpstreamPool& pool_;
  CachedSnapshot snapshot_;
  FastRandom random_;
  Proxy proxy_;
  OpsEndpoints ops_;
  TenantQuotaCache quotas_;
  UsageShard* usage_shard_;      // this thread's part of the usage meter; null: not metering
  MetricsShard* metrics_shard_;  // this thread's part of the metrics; null: none
};

}  // namespace spillway
