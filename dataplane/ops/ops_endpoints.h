// The operations endpoints, /healthz, /readyz, /status and /metrics: answered by the agent
// itself from its routing table and counters, never forwarded.
#pragma once

#include <atomic>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <string>

#include "dataplane/http/header_arena.h"
#include "dataplane/ops/agent_metrics.h"
#include "dataplane/routing/api_path.h"
#include "dataplane/routing/object_pins.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/tenants/tenant_limiter.h"

namespace spillway {

namespace http = boost::beast::http;

// One per I/O thread. What it reads is the server's shared state, which ops/ cannot include:
// the server hands it the parts in.
class OpsEndpoints {
 public:
  // `tenant_limiter` and `metrics` may be null (no quotas, metrics off); every argument
  // outlives this.
  OpsEndpoints(const std::string& region, const std::atomic<int64_t>& requests_in_flight,
               const TenantLimiter* tenant_limiter, const AgentMetrics* metrics,
               const ObjectPins* pins)
      : region_(region),
        requests_in_flight_(requests_in_flight),
        tenant_limiter_(tenant_limiter),
        metrics_(metrics),
        pins_(pins) {}

  static bool Serves(ApiSurface surface) {
    return surface == ApiSurface::kHealthz || surface == ApiSurface::kReadyz ||
           surface == ApiSurface::kStatus || surface == ApiSurface::kMetrics;
  }
  // /status and /metrics show backend endpoints and tenant quotas: on the API port they answer
  // only peers on loopback (the admin listener answers anyone who reaches it). /healthz and
  // /readyz answer everyone: load balancers probe them.
  static bool Restricted(ApiSurface surface) {
    return surface == ApiSurface::kStatus || surface == ApiSurface::kMetrics;
  }

  // The answer to `request` for the endpoint `surface` names (one Serves accepts), keep-alive
  // as the client asked. `snapshot` is the table served now, null before the first.
  http::response<http::string_body> Answer(const Request<http::string_body>& request,
                                           ApiSurface surface,
                                           const RoutingSnapshot* snapshot) const;

 private:
  // Ready when every route has a backend that is usable and not blocked; else `why` says
  // which is not.
  // `ignore_region_drain`: /readyz?drain=ignore, for probes that gate a regional Service
  // (Kubernetes): a drained region's agents must stay in it to serve what still reaches them.
  bool Ready(const RoutingSnapshot* snapshot, bool ignore_region_drain, std::string* why) const;
  std::string StatusJson(const RoutingSnapshot* snapshot) const;

  const std::string& region_;
  const std::atomic<int64_t>& requests_in_flight_;
  const TenantLimiter* tenant_limiter_;
  const AgentMetrics* metrics_;
  const ObjectPins* pins_;  // null: none kept
};

}  // namespace spillway
