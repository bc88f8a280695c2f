// See request_handler.h. Each rejection names what was wrong and with which input, in
// Azure's error shape, with x-should-retry: false where retrying cannot help.
#include "dataplane/server/request_handler.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/routing/api_path.h"
#include "dataplane/auth/entra_token_source.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/tenants/quota_claim.h"

namespace spillway {
namespace {

// The client's key: `api-key`, or `Authorization: Bearer <key>` as the SDKs send it.
absl::string_view ClientKey(const http::request<http::string_body>& request) {
  if (auto it = request.find("api-key"); it != request.end()) {
    return View(it->value());
  }
  if (auto it = request.find(http::field::authorization); it != request.end()) {
    absl::string_view value = View(it->value());
    if (value.size() > 7 && absl::StartsWithIgnoreCase(value, "bearer ")) {
      return absl::StripAsciiWhitespace(value.substr(7));
    }
  }
  return {};
}

bool IsJsonBody(const http::request<http::string_body>& request) {
  auto it = request.find(http::field::content_type);
  if (it == request.end()) {
    return true;
  }
  // "json" in any case, without a lowered copy of the value (an allocation per request).
  const absl::string_view type = View(it->value());
  for (std::size_t i = 0; i + 4 <= type.size(); ++i) {
    if (absl::EqualsIgnoreCase(type.substr(i, 4), "json")) {
      return true;
    }
  }
  return false;
}

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

}  // namespace

asio::awaitable<bool> RequestHandler::Handle(beast::tcp_stream& client,
                                             const http::request<http::string_body>& request) {
  const SteadyTime start = SteadyClock::now();
  const bool keep_alive = request.keep_alive() && !context_.draining.load();
  // A copy, not a reference into the per-thread cache: a table published while this request
  // is suspended must not free the routes and backends it is using.
  const RoutingSnapshotPtr snapshot = snapshot_.Get();
  const ApiPath path = ClassifyTarget(View(request.target()));
  AccessRecord record;
  record.method = View(request.method_string());

  // Bodies are named locals: GCC 12 destroys some temporaries twice inside co_await
  // expressions (conditional operands especially).
  switch (path.surface) {
    case ApiSurface::kHealthz: {
      std::string body = "ok\n";
      co_return co_await ServeLocal(client, request, 200, std::move(body), "text/plain");
    }
    case ApiSurface::kReadyz: {
      std::string why;
      const bool ready = Ready(snapshot.get(), &why);
      std::string body = ready ? std::string("ready\n") : why + "\n";
      co_return co_await ServeLocal(client, request, ready ? 200 : 503, std::move(body),
                                    "text/plain");
    }
    case ApiSurface::kStatus: {
      std::string body = StatusJson(snapshot.get());
      co_return co_await ServeLocal(client, request, 200, std::move(body), "application/json");
    }
    case ApiSurface::kMetrics: {
      if (context_.metrics == nullptr) {
        std::string body = "metrics are off\n";
        co_return co_await ServeLocal(client, request, 404, std::move(body), "text/plain");
      }
      std::string body = context_.metrics->Render(
          {{"spillway_requests_in_flight",
            static_cast<double>(context_.requests_in_flight.load(std::memory_order_relaxed))},
           {"spillway_routing_table_version",
            snapshot == nullptr ? 0.0 : static_cast<double>(snapshot->table().version())}});
      co_return co_await ServeLocal(client, request, 200, std::move(body),
                                    "text/plain; version=0.0.4");
    }
    default:
      break;
  }

  std::optional<ErrorReply> early;
  if (path.surface == ApiSurface::kUnknownOpenAi) {
    early = ErrorReply{404, "404",
                       absl::StrCat("Path '", View(request.target()).substr(0, 200),
                                    "' is not served by this gateway: use "
                                    "/openai/deployments/{route}/... or /openai/v1/...")};
  } else if (path.surface == ApiSurface::kNotFound) {
    early = ErrorReply{404, "404", "Resource not found"};
  } else if (snapshot == nullptr) {
    early = ErrorReply{503, "ServiceUnavailable", "The gateway has no routing table yet", {}, true};
  }
  if (early.has_value()) {
    co_return co_await Reply(client, *std::move(early), keep_alive, record, start);
  }

  const SnapshotTenant* tenant = nullptr;
  if (!snapshot->open_access()) {
    const absl::string_view key = ClientKey(request);
    tenant = key.empty() ? nullptr : snapshot->FindTenantByKey(key);
    if (tenant == nullptr) {
      ErrorReply error{401, "401",
                       key.empty()
                           ? "Access denied: no api-key header or Authorization: Bearer key was "
                             "given."
                           : "Access denied due to invalid subscription key or wrong API endpoint. "
                             "Make sure to provide a valid key for an active subscription."};
      co_return co_await Reply(client, std::move(error), keep_alive, record, start);
    }
    record.tenant = tenant->name;
  }
  record.metered = true;  // the client is known: from here on every answer is charged

  ProxyRequest proxy_request;
  proxy_request.client_request = &request;
  proxy_request.snapshot = snapshot.get();
  proxy_request.client_keep_alive = keep_alive;
  proxy_request.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_STANDARD;
  if (!request.body().empty() && IsJsonBody(request)) {
    absl::StatusOr<RequestFacts> facts = ReadRequestFacts(request.body());
    if (!facts.ok()) {
      ErrorReply error{400, "BadRequest", std::string(facts.status().message())};
      co_return co_await Reply(client, std::move(error), keep_alive, record, start);
    }
    proxy_request.facts = *std::move(facts);
  }
  record.stream = proxy_request.facts.stream;

  std::string route_name;
  if (path.surface == ApiSurface::kV1) {
    if (proxy_request.facts.model.empty()) {
      ErrorReply error{400, "BadRequest",
                       absl::StrCat("Requests to ", View(request.target()).substr(0, 200),
                                    " must name the route in the body's \"model\" field")};
      co_return co_await Reply(client, std::move(error), keep_alive, record, start);
    }
    route_name = proxy_request.facts.model;
    proxy_request.v1_surface = true;
  } else {
    route_name = path.route;
    proxy_request.upstream_suffix = path.suffix;
  }
  record.route = route_name;

  proxy_request.route = snapshot->FindRoute(route_name);
  if (proxy_request.route == nullptr && tenant != nullptr) {
    const auto& foreign = snapshot->table().foreign_routes();
    if (auto it = foreign.find(route_name); it != foreign.end()) {
      ErrorReply error{403, "403",
                       absl::StrCat("Route '", route_name, "' is served only in stamp '",
                                    it->second, "'; tenant '", tenant->name,
                                    "' belongs to another stamp and cannot use it.")};
      co_return co_await Reply(client, std::move(error), keep_alive, record, start);
    }
  }
  if (proxy_request.route == nullptr) {
    ErrorReply error{
        404, "DeploymentNotFound",
        absl::StrCat("The route '", route_name.substr(0, 200),
                     "' does not exist in this gateway's region '", context_.region, "'.")};
    co_return co_await Reply(client, std::move(error), keep_alive, record, start);
  }
  if (tenant != nullptr && !tenant->routes.contains(route_name)) {
    ErrorReply error{403, "403",
                     absl::StrCat("Tenant '", tenant->name, "' is not allowed to use route '",
                                  route_name, "'.")};
    co_return co_await Reply(client, std::move(error), keep_alive, record, start);
  }

  // The tenant's TPM/RPM quota: charged up front, corrected once the response has ended.
  QuotaClaim quota;
  if (tenant != nullptr &&
      (tenant->limits.tokens_per_minute() > 0 || tenant->limits.requests_per_minute() > 0)) {
    quota = QuotaClaim(quotas_.Find(tenant->name), tenant->limits,
                       QuotaCost(proxy_request.facts, View(request.target()),
                                 context_.proxy.default_max_output_tokens),
                       SteadyClock::now());
    if (quota.refused()) {
      ErrorReply refusal = quota.Refusal(tenant->name, tenant->limits, View(request.target()));
      co_return co_await Reply(client, std::move(refusal), keep_alive, record, start);
    }
    proxy_request.rate_limit = quota.headers();
  }

  context_.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
  ProxyOutcome outcome = co_await proxy_.Forward(client, proxy_request, pool_, random_);
  context_.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
  quota.Settle(outcome.status, !outcome.backend_id.empty(), outcome.usage, SteadyClock::now());
  record.status = outcome.status;
  record.backend = outcome.backend_id;
  record.attempts = outcome.attempts;
  record.usage = outcome.usage;
  record.error = outcome.error;
  if (outcome.backend_config != nullptr) {
    record.instance = outcome.backend_config->instance();
    record.region = outcome.backend_config->region();
  }
  record.latency_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
  context_.access_log->Write(record);
  Meter(record);
  co_return outcome.keep_alive;
}

asio::awaitable<bool> RequestHandler::Reply(beast::tcp_stream& client, ErrorReply error,
                                            bool keep_alive, AccessRecord& record,
                                            SteadyTime start) {
  auto response = MakeErrorResponse(error, keep_alive);
  const bool written =
      co_await WriteResponse(client, response, context_.proxy.client_write_timeout);
  record.status = error.status;
  record.error = error.message;
  record.latency_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
  context_.access_log->Write(record);
  Meter(record);
  co_return written&& keep_alive;
}

void RequestHandler::Meter(const AccessRecord& record) {
  if (metrics_shard_ != nullptr) {
    metrics_shard_->Record(record);
  }
  if (usage_shard_ != nullptr && record.metered) {
    usage_shard_->Add(record, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  }
}

asio::awaitable<bool> RequestHandler::ServeLocal(beast::tcp_stream& client,
                                                 const http::request<http::string_body>& request,
                                                 unsigned status, std::string body,
                                                 const char* content_type) {
  http::response<http::string_body> response{static_cast<http::status>(status), 11};
  response.set(http::field::content_type, content_type);
  response.body() = std::move(body);
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  const bool written =
      co_await WriteResponse(client, response, context_.proxy.client_write_timeout);
  co_return written&& request.keep_alive();
}

bool RequestHandler::Ready(const RoutingSnapshot* snapshot, std::string* why) const {
  if (snapshot == nullptr) {
    *why = "no routing table";
    return false;
  }
  const SteadyTime now = SteadyClock::now();
  for (const v1::CompiledRoute& route : snapshot->table().routes()) {
    bool live = false;
    for (const v1::CompiledSplit& split : route.splits()) {
      for (const v1::CompiledTier& tier : split.tiers()) {
        for (const v1::TierMember& member : tier.members()) {
          const SnapshotBackend& backend = snapshot->backends()[member.backend()];
          live |= backend.unusable_reason.empty() && backend.state->breaker.AvailableAt() <= now;
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

std::string RequestHandler::StatusJson(const RoutingSnapshot* snapshot) const {
  boost::json::object status;
  status["region"] = context_.region;
  status["requests_in_flight"] = context_.requests_in_flight.load();
  if (snapshot == nullptr) {
    status["version"] = nullptr;
    return boost::json::serialize(status);
  }
  status["version"] = snapshot->version();
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
        {"state", backend.unusable_reason.empty() ? HealthName(breaker.State(now)) : "unusable"},
        {"unusable_reason", backend.unusable_reason},
        {"entra_token", backend.entra_token != nullptr
                            ? boost::json::value(backend.entra_token->StatusJson(now))
                            : boost::json::value(nullptr)},
        {"available_in_ms", wait.count() > 0 ? wait.count() : 0},
        {"consecutive_failures", breaker.consecutive_failures()},
        {"in_flight", backend.state->in_flight.load()},
        {"tokens_last_10s", backend.state->load.Sum(now)}});
  }
  status["backends"] = std::move(backends);
  boost::json::array routes;
  for (const v1::CompiledRoute& route : snapshot->table().routes()) {
    routes.push_back(boost::json::string(route.name()));
  }
  status["routes"] = std::move(routes);
  if (context_.tenant_limiter != nullptr) {
    status["tenant_quotas"] = context_.tenant_limiter->Describe(now);
  }
  return boost::json::serialize(status);
}

}  // namespace spillway
