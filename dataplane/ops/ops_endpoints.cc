// See ops_endpoints.h.
#include "dataplane/ops/ops_endpoints.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/auth/entra_token_source.h"

namespace spillway {
namespace {

const char* HealthName(v1::HealthState state) {
  switch (state) {
    case v1::HEALTH_STATE_HEALTHY:
      return "healthy";
    case v1::HEALTH_STATE_THROTTLED:
      return "throttled";
    case v1::HEALTH_STATE_UNHEALTHY:
      return "open";
    case v1::HEALTH_STATE_HALF_OPEN:
      return "half-open";
    default:
      return "unknown";
  }
}

http::response<http::string_body> Local(const Request<http::string_body>& request, unsigned status,
                                        std::string body, const char* content_type) {
  http::response<http::string_body> response{static_cast<http::status>(status), 11};
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  return response;
}

}  // namespace

http::response<http::string_body> OpsEndpoints::Answer(const Request<http::string_body>& request,
                                                       ApiSurface surface,
                                                       const RoutingSnapshot* snapshot) const {
  switch (surface) {
    case ApiSurface::kReadyz: {
      std::string why;
      const bool ignore_drain = absl::StrContains(
          absl::string_view(request.target().data(), request.target().size()), "?drain=ignore");
      if (!Ready(snapshot, ignore_drain, &why)) {
        return Local(request, 503, why + "\n", "text/plain");
      }
      return Local(request, 200, "ready\n", "text/plain");
    }
    case ApiSurface::kStatus:
      return Local(request, 200, StatusJson(snapshot), "application/json");
    case ApiSurface::kMetrics: {
      if (metrics_ == nullptr) {
        return Local(request, 404, "metrics are off\n", "text/plain");
      }
      std::string body = metrics_->Render(
          {{"spillway_requests_in_flight", "Client requests being served now.",
            static_cast<double>(requests_in_flight_.load(std::memory_order_relaxed))},
           {"spillway_routing_table_version",
            "Version of the routing table served (0: none yet); the control plane's "
            "spillway_cp_agent_version_lag says how far behind it is.",
            snapshot == nullptr ? 0.0 : static_cast<double>(snapshot->table().version())},
           {"spillway_object_pins", "Stateful objects whose backend the agent knows (pins).",
            pins_ == nullptr ? 0.0 : static_cast<double>(pins_->size())}},
          snapshot, SteadyClock::now());
      return Local(request, 200, std::move(body), "text/plain; version=0.0.4");
    }
    default:  // kHealthz
      return Local(request, 200, "ok\n", "text/plain");
  }
}

bool OpsEndpoints::Ready(const RoutingSnapshot* snapshot, bool ignore_region_drain,
                         std::string* why) const {
  if (snapshot == nullptr) {
    *why = "no routing table";
    return false;
  }
  if (const v1::RoutingTable& table = snapshot->table();
      table.has_region_drain() && !ignore_region_drain) {
    // A global load balancer reads this to move clients to another region.
    const v1::DrainNotice& drain = table.region_drain();
    *why = absl::StrCat(drain.drained(), " is drained", drain.reason().empty() ? "" : ": ",
                        drain.reason());
    return false;
  }
  const SteadyTime now = SteadyClock::now();
  for (const v1::CompiledRoute& route : snapshot->table().routes()) {
    bool live = false;
    for (const v1::CompiledSplit& split : route.splits()) {
      for (const v1::CompiledTier& tier : split.tiers()) {
        for (const v1::TierMember& member : tier.members()) {
          const SnapshotBackend& backend = snapshot->backends()[member.backend()];
          live |= backend.unusable_reason.empty() && !backend.config->has_drain() &&
                  backend.state->breaker.AvailableAt() <= now;
        }
      }
    }
    if (!live) {
      *why = absl::StrCat("route ", route.name(), " has no live backend");
      return false;
    }
  }
  return true;
}

std::string OpsEndpoints::StatusJson(const RoutingSnapshot* snapshot) const {
  boost::json::object status;
  status["region"] = region_;
  status["requests_in_flight"] = requests_in_flight_.load();
  if (snapshot == nullptr) {
    status["version"] = nullptr;
    return boost::json::serialize(status);
  }
  status["version"] = snapshot->version();
  if (snapshot->table().has_region_drain()) {
    status["region_drain"] = {{"drained", snapshot->table().region_drain().drained()},
                              {"reason", snapshot->table().region_drain().reason()}};
  }
  const SteadyTime now = SteadyClock::now();
  boost::json::array backends;
  for (const SnapshotBackend& backend : snapshot->backends()) {
    const CircuitBreaker& breaker = backend.state->breaker;
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(breaker.AvailableAt() - now);
    backends.push_back(boost::json::object{
        {"id", backend.config->id()},
        {"endpoint", backend.config->endpoint()},
        {"region", backend.config->region()},
        {"state", !backend.unusable_reason.empty() ? "unusable"
                  : backend.config->has_drain()    ? "drained"
                                                   : HealthName(breaker.State(now))},
        {"drain", backend.config->has_drain()
                      ? boost::json::value{{"drained", backend.config->drain().drained()},
                                           {"reason", backend.config->drain().reason()},
                                           {"keep_pinned", backend.config->drain().keep_pinned()}}
                      : boost::json::value(nullptr)},
        {"unusable_reason", backend.unusable_reason},
        {"entra_token", backend.entra_token != nullptr
                            ? boost::json::value(backend.entra_token->StatusJson(now))
                            : boost::json::value(nullptr)},
        {"available_in_ms", wait.count() > 0 ? wait.count() : 0},
        {"consecutive_failures", breaker.consecutive_failures()},
        {"in_flight", backend.state->in_flight.load()},
        {"tokens_last_10s", backend.state->load.Sum(now)},
        // The headroom spilling is judged against: PTUs x the PTU rates, or Standard's TPM.
        {"tokens_per_minute", backend.config->estimated_tokens_per_minute()}});
  }
  status["backends"] = std::move(backends);
  boost::json::array routes;
  for (const v1::CompiledRoute& route : snapshot->table().routes()) {
    routes.push_back(boost::json::string(route.name()));
  }
  status["routes"] = std::move(routes);
  if (tenant_limiter_ != nullptr) {
    status["tenant_quotas"] = tenant_limiter_->Describe(now);
  }
  return boost::json::serialize(status);
}

}  // namespace spillway
