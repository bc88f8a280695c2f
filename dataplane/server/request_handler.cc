// See request_handler.h. Each rejection names what was wrong and with which input, in
// Azure's error shape, with x-should-retry: false where retrying cannot help.
#include "dataplane/server/request_handler.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/wall_clock.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/local_reply.h"

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

}  // namespace

asio::awaitable<bool> RequestHandler::Handle(beast::tcp_stream& client,
                                             const http::request<http::string_body>& request) {
  const SteadyTime start = SteadyClock::now();
  // A copy, not a reference into the per-thread cache: a table published while this request
  // is suspended must not free the routes and backends it is using.
  const RoutingSnapshotPtr snapshot = snapshot_.Get();
  const ApiPath path = ClassifyTarget(View(request.target()));
  if (OpsEndpoints::Serves(path.surface)) {
    auto response = ops_.Answer(request, path.surface, snapshot.get());
    const bool written =
        co_await WriteResponse(client, response, context_.proxy.client_write_timeout);
    co_return written&& request.keep_alive();
  }

  const bool keep_alive = request.keep_alive() && !context_.draining.load();
  AccessRecord record;
  record.method = View(request.method_string());
  ProxyRequest proxy_request;
  QuotaClaim quota;
  std::optional<ErrorReply> refusal =
      Admit(request, path, snapshot.get(), keep_alive, record, proxy_request, quota);
  if (refusal.has_value()) {
    co_return co_await Reply(client, *std::move(refusal), keep_alive, record, start);
  }

  context_.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
  ProxyOutcome outcome = co_await proxy_.Forward(client, proxy_request, pool_, random_);
  context_.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
  quota.Settle(outcome.status, !outcome.backend_id.empty(), outcome.usage, SteadyClock::now());
  Record(outcome, start, record);
  co_return outcome.keep_alive;
}

std::optional<ErrorReply> RequestHandler::Admit(const http::request<http::string_body>& request,
                                                const ApiPath& path,
                                                const RoutingSnapshot* snapshot, bool keep_alive,
                                                AccessRecord& record, ProxyRequest& proxy_request,
                                                QuotaClaim& quota) {
  if (std::optional<ErrorReply> refusal = CheckPath(request, path, snapshot)) {
    return refusal;
  }
  const SnapshotTenant* tenant = nullptr;
  if (std::optional<ErrorReply> refusal = Authenticate(request, *snapshot, tenant, record)) {
    return refusal;
  }
  record.metered = true;  // the client is known: from here on every answer is charged
  proxy_request.client_request = &request;
  proxy_request.snapshot = snapshot;
  proxy_request.client_keep_alive = keep_alive;
  if (std::optional<ErrorReply> refusal =
          Route(request, path, *snapshot, tenant, record, proxy_request)) {
    return refusal;
  }
  if (tenant == nullptr) {
    return std::nullopt;
  }
  return ClaimQuota(request, *tenant, proxy_request, quota);
}

std::optional<ErrorReply> RequestHandler::CheckPath(const http::request<http::string_body>& request,
                                                    const ApiPath& path,
                                                    const RoutingSnapshot* snapshot) const {
  if (path.surface == ApiSurface::kUnknownOpenAi) {
    return ErrorReply{404, "404",
                      absl::StrCat("Path '", View(request.target()).substr(0, 200),
                                   "' is not served by this gateway: use "
                                   "/openai/deployments/{route}/... or /openai/v1/...")};
  }
  if (path.surface == ApiSurface::kNotFound) {
    return ErrorReply{404, "404", "Resource not found"};
  }
  if (snapshot == nullptr) {
    return ErrorReply{503, "ServiceUnavailable", "The gateway has no routing table yet", {}, true};
  }
  return std::nullopt;
}

std::optional<ErrorReply> RequestHandler::Authenticate(
    const http::request<http::string_body>& request, const RoutingSnapshot& snapshot,
    const SnapshotTenant*& tenant, AccessRecord& record) const {
  if (snapshot.open_access()) {
    return std::nullopt;
  }
  const absl::string_view key = ClientKey(request);
  tenant = key.empty() ? nullptr : snapshot.FindTenantByKey(key);
  if (tenant == nullptr) {
    return ErrorReply{401, "401",
                      key.empty()
                          ? "Access denied: no api-key header or Authorization: Bearer key was "
                            "given."
                          : "Access denied due to invalid subscription key or wrong API endpoint. "
                            "Make sure to provide a valid key for an active subscription."};
  }
  record.tenant = tenant->name;
  return std::nullopt;
}

std::optional<ErrorReply> RequestHandler::Route(const http::request<http::string_body>& request,
                                                const ApiPath& path,
                                                const RoutingSnapshot& snapshot,
                                                const SnapshotTenant* tenant, AccessRecord& record,
                                                ProxyRequest& proxy_request) const {
  proxy_request.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_STANDARD;
  if (!request.body().empty() && IsJsonBody(request)) {
    absl::StatusOr<RequestFacts> facts = ReadRequestFacts(request.body());
    if (!facts.ok()) {
      return ErrorReply{400, "BadRequest", std::string(facts.status().message())};
    }
    proxy_request.facts = *std::move(facts);
  }
  record.stream = proxy_request.facts.stream;

  // A view into the body's facts or the path, both in Handle's frame: the record outlives
  // this function.
  absl::string_view route_name;
  if (path.surface == ApiSurface::kV1) {
    if (proxy_request.facts.model.empty()) {
      return ErrorReply{400, "BadRequest",
                        absl::StrCat("Requests to ", View(request.target()).substr(0, 200),
                                     " must name the route in the body's \"model\" field")};
    }
    route_name = proxy_request.facts.model;
    proxy_request.v1_surface = true;
  } else {
    route_name = path.route;
    proxy_request.upstream_suffix = path.suffix;
  }
  record.route = route_name;

  proxy_request.route = snapshot.FindRoute(route_name);
  if (proxy_request.route == nullptr && tenant != nullptr) {
    const auto& foreign = snapshot.table().foreign_routes();
    // (A copy: this protobuf's map finds by its own key type only. Only unknown routes get here.)
    if (auto it = foreign.find(std::string(route_name)); it != foreign.end()) {
      return ErrorReply{403, "403",
                        absl::StrCat("Route '", route_name, "' is served only in stamp '",
                                     it->second, "'; tenant '", tenant->name,
                                     "' belongs to another stamp and cannot use it.")};
    }
  }
  if (proxy_request.route == nullptr) {
    return ErrorReply{
        404, "DeploymentNotFound",
        absl::StrCat("The route '", route_name.substr(0, 200),
                     "' does not exist in this gateway's region '", context_.region, "'.")};
  }
  if (tenant != nullptr && !tenant->routes.contains(route_name)) {
    return ErrorReply{403, "403",
                      absl::StrCat("Tenant '", tenant->name, "' is not allowed to use route '",
                                   route_name, "'.")};
  }
  return std::nullopt;
}

std::optional<ErrorReply> RequestHandler::ClaimQuota(
    const http::request<http::string_body>& request, const SnapshotTenant& tenant,
    ProxyRequest& proxy_request, QuotaClaim& quota) {
  if (tenant.limits.tokens_per_minute() <= 0 && tenant.limits.requests_per_minute() <= 0) {
    return std::nullopt;
  }
  quota = QuotaClaim(quotas_.Find(tenant.name), tenant.limits,
                     QuotaCost(proxy_request.facts, View(request.target()),
                               context_.proxy.default_max_output_tokens),
                     SteadyClock::now());
  if (quota.refused()) {
    return quota.Refusal(tenant.name, tenant.limits, View(request.target()));
  }
  proxy_request.rate_limit = quota.headers();
  return std::nullopt;
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

void RequestHandler::Record(const ProxyOutcome& outcome, SteadyTime start, AccessRecord& record) {
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
}

void RequestHandler::Meter(const AccessRecord& record) {
  if (metrics_shard_ != nullptr) {
    metrics_shard_->Record(record);
  }
  if (usage_shard_ != nullptr && record.metered) {
    usage_shard_->Add(record, UnixMillisNow());
  }
}

}  // namespace spillway
