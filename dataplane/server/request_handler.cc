// See request_handler.h. Each rejection names what was wrong and with which input, in
// Azure's error shape, with x-should-retry: false where retrying cannot help.
#include "dataplane/server/request_handler.h"

#include <boost/beast/websocket/rfc6455.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/wall_clock.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/routing/query_params.h"
#include "dataplane/server/model_list.h"
#include "dataplane/server/object_routing.h"

namespace spillway {
namespace {

// The client's key: `api-key`, or `Authorization: Bearer <key>` as the SDKs send it, or (a
// Realtime WebSocket from a browser, which cannot set headers) `query_key`, the api-key query
// parameter. Several keys that differ (two api-key headers, or an api-key and another Bearer)
// are a conflict: the first one's access is not granted on the strength of a second.
absl::string_view ClientKey(const RequestHead& head, absl::string_view query_key, bool& conflict) {
  absl::string_view key = query_key;
  auto take = [&](absl::string_view presented) {
    if (key.empty()) {
      key = presented;
    } else if (presented != key) {
      conflict = true;
    }
  };
  for (const auto& field : head) {
    if (field.name() == http::field::authorization) {
      absl::string_view value = View(field.value());
      if (value.size() > 7 && absl::StartsWithIgnoreCase(value, "bearer ")) {
        take(absl::StripAsciiWhitespace(value.substr(7)));
      }
    } else if (field.name() == http::field::unknown &&
               beast::iequals(field.name_string(), "api-key")) {
      take(View(field.value()));
    }
  }
  return key;
}

// Asked only for /status and /metrics (a getpeername each), never on the request path.
bool PeerOnLoopback(beast::tcp_stream& client) {
  beast::error_code ec;
  const auto peer = client.socket().remote_endpoint(ec);
  if (ec) {
    return false;
  }
  const asio::ip::address address = peer.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback();
  }
  return address.is_loopback();
}

bool IsJsonBody(const Request<http::string_body>& request) {
  auto it = FindField(request.base(), http::field::content_type);
  if (it == request.end()) {
    return true;
  }
  // "json" in any case, without a lowered copy of the value (an allocation per request). A
  // compare is made only where a 'j' stands: one at every offset was 13 calls and ~350
  // instructions for "application/json" (callgrind).
  const absl::string_view type = View(it->value());
  for (std::size_t i = 0; i + 4 <= type.size(); ++i) {
    if ((type[i] == 'j' || type[i] == 'J') && absl::EqualsIgnoreCase(type.substr(i, 4), "json")) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<ErrorReply> RequestHandler::AdmitHead(const RequestHead& head,
                                                    HeadAdmission& admission) {
  admission.start = SteadyClock::now();
  admission.snapshot = snapshot_.Get();
  admission.path = ClassifyTarget(View(head.target()), View(head.method_string()));
  if (OpsEndpoints::Serves(admission.path.surface)) {
    return std::nullopt;
  }
  if (std::optional<ErrorReply> refusal =
          CheckPath(head, admission.path, admission.snapshot.get())) {
    return refusal;
  }
  if (admission.path.surface == ApiSurface::kRealtime && !beast::websocket::is_upgrade(head)) {
    return ErrorReply{400, "BadRequest",
                      "The Realtime API is a WebSocket: send GET with Upgrade: websocket."};
  }
  if (std::optional<ErrorReply> refusal = Authenticate(head, admission)) {
    return refusal;
  }
  if (admission.path.surface == ApiSurface::kDeployment) {
    return FindRoute(admission.path.route, admission, admission.route);
  }
  if (const absl::string_view param = RouteParam(admission.path.operation->source);
      !param.empty()) {
    if (admission.path.route.empty()) {
      const absl::string_view target = View(head.target());
      return ErrorReply{
          400, "BadRequest",
          absl::StrCat("Requests to ", target.substr(0, target.find('?')).substr(0, 200),
                       " must name the route in the query's \"", param, "\" parameter.")};
    }
    return FindRoute(admission.path.route, admission, admission.route);
  }
  return std::nullopt;
}

asio::awaitable<void> RequestHandler::Refuse(beast::tcp_stream& client, const RequestHead& head,
                                             ErrorReply error, const HeadAdmission& admission) {
  AccessRecord record;
  record.method = View(head.method_string());
  record.tenant = admission.tenant != nullptr ? absl::string_view(admission.tenant->name) : "";
  record.priority =
      admission.tenant != nullptr ? admission.tenant->priority : v1::PRIORITY_UNSPECIFIED;
  // An unknown client's path is not a label: it could mint metric series at will.
  record.route = admission.authenticated ? absl::string_view(admission.path.route) : "";
  record.metered = admission.authenticated;
  co_await Reply(client, std::move(error), /*keep_alive=*/false, record, admission.start);
}

asio::awaitable<bool> RequestHandler::Handle(beast::tcp_stream& client, beast::flat_buffer& buffer,
                                             const Request<http::string_body>& request,
                                             const HeadAdmission& admission) {
  if (OpsEndpoints::Serves(admission.path.surface)) {
    if (OpsEndpoints::Restricted(admission.path.surface) && !PeerOnLoopback(client)) {
      AccessRecord record;
      record.method = View(request.method_string());
      ErrorReply refusal{403, "403",
                         "/status and /metrics answer only on loopback or on the agent's "
                         "--admin-listen address."};
      co_return co_await Reply(client, std::move(refusal), request.keep_alive(), record,
                               admission.start);
    }
    auto response = ops_.Answer(request, admission.path.surface, admission.snapshot.get());
    const bool written =
        co_await WriteResponse(client, response, context_.proxy.client_write_timeout);
    co_return written&& request.keep_alive();
  }

  const bool keep_alive = request.keep_alive() && !context_.draining.load();
  AccessRecord record;
  record.method = View(request.method_string());
  if (admission.path.operation->source == RouteSource::kGateway) {
    co_return co_await AnswerModels(client, admission, keep_alive, record);
  }
  ProxyRequest proxy_request;
  QuotaClaim quota;
  std::optional<ErrorReply> refusal =
      AdmitBody(request, admission, keep_alive, record, proxy_request, quota);
  if (refusal.has_value()) {
    co_return co_await Reply(client, *std::move(refusal), keep_alive, record, admission.start);
  }

  if (proxy_request.facts.stream && buffer.size() == 0) {
    buffer.shrink_to_fit();  // nothing pipelined: a stream open for minutes need not hold it
  }
  context_.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
  ProxyOutcome outcome = co_await proxy_.Forward(client, proxy_request, pool_, random_);
  context_.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
  quota.Settle(outcome.status, !outcome.backend_id.empty(), outcome.usage, SteadyClock::now());
  if (context_.pins != nullptr) {
    UpdatePins(*context_.pins, admission.path, View(request.method_string()), proxy_request,
               outcome, admission.tenant, context_.pin_retention);
  }
  Record(outcome, admission.start, record);
  co_return outcome.keep_alive;
}

asio::awaitable<void> RequestHandler::HandleRealtime(beast::tcp_stream& client,
                                                     const Request<http::string_body>& request,
                                                     const HeadAdmission& admission) {
  const SnapshotTenant* tenant = admission.tenant;
  AccessRecord record;
  record.method = View(request.method_string());
  record.tenant = tenant != nullptr ? absl::string_view(tenant->name) : "";
  record.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_UNSPECIFIED;
  record.route = admission.route->name;
  record.metered = true;
  ProxyRequest proxy_request;
  proxy_request.client_request = &request;
  proxy_request.snapshot = admission.snapshot.get();
  proxy_request.route = admission.route;
  proxy_request.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_STANDARD;
  proxy_request.client_keep_alive = false;
  proxy_request.route_param = RouteParam(admission.path.operation->source);
  // One request up front and no tokens (a session's are unknown); its usage is charged when
  // it ends (docs/realtime.md).
  QuotaClaim quota;
  if (tenant != nullptr) {
    if (std::optional<ErrorReply> refusal = ClaimQuota(request, *tenant, proxy_request, quota)) {
      co_await Reply(client, *std::move(refusal), false, record, admission.start);
      co_return;
    }
  }
  context_.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
  ProxyOutcome outcome = co_await realtime_.Run(client, proxy_request, pool_, random_);
  context_.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
  quota.Settle(outcome.status, !outcome.backend_id.empty(), outcome.usage, SteadyClock::now());
  Record(outcome, admission.start, record);
}

asio::awaitable<bool> RequestHandler::HandleAdmin(beast::tcp_stream& client,
                                                  const Request<http::string_body>& request) {
  const ApiSurface surface = ClassifyTarget(View(request.target())).surface;
  if (!OpsEndpoints::Serves(surface)) {
    auto response = MakeErrorResponse(
        ErrorReply{404, "404", "The admin listener serves /healthz, /readyz, /status, /metrics."},
        request.keep_alive());
    co_return co_await WriteResponse(client, response, context_.proxy.client_write_timeout) &&
        request.keep_alive();
  }
  auto response = ops_.Answer(request, surface, snapshot_.Get().get());
  const bool written =
      co_await WriteResponse(client, response, context_.proxy.client_write_timeout);
  co_return written&& request.keep_alive();
}

std::optional<ErrorReply> RequestHandler::CheckPath(const RequestHead& head, const ApiPath& path,
                                                    const RoutingSnapshot* snapshot) const {
  // Quoted in errors (and so in the access log): a key in the query is not. Made only for an
  // error: on every admitted request it was a copy, an allocation and a query scan (~800
  // instructions, callgrind).
  auto quoted = [&head] { return RedactKey(View(head.target()).substr(0, 200)); };
  switch (path.surface) {
    case ApiSurface::kUnknownOpenAi:
      return ErrorReply{404, "404",
                        absl::StrCat("Path '", quoted(),
                                     "' is not served by this gateway: it forwards the operations "
                                     "/openai/deployments/{route}/chat/completions, ... and "
                                     "/openai/v1/chat/completions, ... that it knows")};
    case ApiSurface::kBadPath:
      return ErrorReply{400, "BadRequest",
                        absl::StrCat("Path '", quoted(),
                                     "' is not in normal form: percent-encoding, '.' and '..' "
                                     "segments and empty segments are refused.")};
    case ApiSurface::kNotFound:
      return ErrorReply{404, "404", "Resource not found"};
    default:
      break;
  }
  if (!MethodAllowed(*path.operation, View(head.method_string()))) {
    return ErrorReply{
        405, "MethodNotAllowed",
        absl::StrCat("Method ", View(head.method_string()).substr(0, 20), " is not allowed on '",
                     quoted(), "': use ", AllowedMethods(*path.operation), ".")};
  }
  if (snapshot == nullptr) {
    return ErrorReply{503, "ServiceUnavailable", "The gateway has no routing table yet", {}, true};
  }
  return std::nullopt;
}

std::optional<ErrorReply> RequestHandler::Authenticate(const RequestHead& head,
                                                       HeadAdmission& admission) const {
  if (admission.snapshot->open_access()) {
    admission.authenticated = true;
    return std::nullopt;
  }
  bool conflict = false;
  std::optional<std::string> query_key;
  if (admission.path.surface == ApiSurface::kRealtime) {
    query_key = QueryParam(View(head.target()), kApiKeyParam);
  }
  // Not value_or(""): the key is a view, and must not point into a temporary.
  const absl::string_view key = ClientKey(
      head, query_key.has_value() ? absl::string_view(*query_key) : absl::string_view(), conflict);
  if (conflict) {
    return ErrorReply{401, "401",
                      "Access denied: the request carries more than one key and they differ "
                      "(api-key headers, an Authorization: Bearer key or an api-key query "
                      "parameter)."};
  }
  admission.tenant = key.empty() ? nullptr : admission.snapshot->FindTenantByKey(key);
  if (admission.tenant == nullptr) {
    return ErrorReply{401, "401",
                      key.empty()
                          ? "Access denied: no api-key header or Authorization: Bearer key was "
                            "given."
                          : "Access denied due to invalid subscription key or wrong API endpoint. "
                            "Make sure to provide a valid key for an active subscription."};
  }
  admission.authenticated = true;
  return std::nullopt;
}

std::optional<ErrorReply> RequestHandler::FindRoute(absl::string_view name,
                                                    const HeadAdmission& admission,
                                                    const SnapshotRoute*& route) const {
  const RoutingSnapshot& snapshot = *admission.snapshot;
  const SnapshotTenant* tenant = admission.tenant;
  route = snapshot.FindRoute(name);
  if (route == nullptr && tenant != nullptr) {
    const auto& foreign = snapshot.table().foreign_routes();
    // (A copy: this protobuf's map finds by its own key type only. Only unknown routes get here.)
    if (auto it = foreign.find(std::string(name)); it != foreign.end()) {
      return ErrorReply{
          403, "403",
          absl::StrCat("Route '", name, "' is served only in stamp '", it->second, "'; tenant '",
                       tenant->name, "' belongs to another stamp and cannot use it.")};
    }
  }
  if (route == nullptr) {
    return ErrorReply{
        404, "DeploymentNotFound",
        absl::StrCat("The route '", name.substr(0, 200),
                     "' does not exist in this gateway's region '", context_.region, "'.")};
  }
  if (tenant != nullptr && !tenant->routes.contains(name)) {
    return ErrorReply{
        403, "403",
        absl::StrCat("Tenant '", tenant->name, "' is not allowed to use route '", name, "'.")};
  }
  return std::nullopt;
}

std::optional<ErrorReply> RequestHandler::AdmitBody(const Request<http::string_body>& request,
                                                    const HeadAdmission& admission, bool keep_alive,
                                                    AccessRecord& record,
                                                    ProxyRequest& proxy_request,
                                                    QuotaClaim& quota) {
  const SnapshotTenant* tenant = admission.tenant;
  record.tenant = tenant != nullptr ? absl::string_view(tenant->name) : "";
  record.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_UNSPECIFIED;
  record.metered = true;  // the client is known: from here on every answer is charged
  proxy_request.client_request = &request;
  proxy_request.snapshot = admission.snapshot.get();
  proxy_request.client_keep_alive = keep_alive;
  proxy_request.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_STANDARD;
  if (!request.body().empty() && IsJsonBody(request)) {
    if (absl::Status read = ReadRequestFacts(request.body(), proxy_request.facts); !read.ok()) {
      record.route = admission.path.route;
      return ErrorReply{400, "BadRequest", std::string(read.message())};
    }
  }
  record.stream = proxy_request.facts.stream;
  if (admission.path.surface == ApiSurface::kV1 &&
      admission.path.operation->source == RouteSource::kObjectOwner) {
    // Reading, deleting or cancelling an object costs no tokens: no quota is claimed.
    proxy_request.v1_surface = true;
    return RouteStateful(admission, record, proxy_request);
  }
  if (admission.path.operation->source == RouteSource::kTenantDefault) {
    // An object created without naming a model (a conversation, a file) costs no tokens
    // either. One naming another object (a batch's input file) is created beside it.
    proxy_request.v1_surface = true;
    if (!proxy_request.facts.object_refs.empty()) {
      return RouteStateful(admission, record, proxy_request);
    }
    proxy_request.route = DefaultRoute(*admission.snapshot, tenant);
    if (proxy_request.route == nullptr) {
      return ErrorReply{404, "DeploymentNotFound",
                        "No route of this gateway may be used with this key."};
    }
    record.route = proxy_request.route->name;
    proxy_request.creates = admission.path.operation->creates;
    return std::nullopt;
  }
  if (admission.path.surface == ApiSurface::kV1 && admission.route != nullptr) {
    // Named in the query (Realtime calls): the target is rewritten per backend.
    record.route = admission.route->name;
    proxy_request.route = admission.route;
    proxy_request.v1_surface = true;
    proxy_request.route_param = RouteParam(admission.path.operation->source);
  } else if (admission.path.surface == ApiSurface::kV1) {
    if (admission.path.operation->source == RouteSource::kSessionModel &&
        !proxy_request.facts.session_model.empty()) {
      proxy_request.facts.model = proxy_request.facts.session_model;
      proxy_request.model_in_session = true;
    }
    // A view into the body's facts, in the caller's frame: the record outlives this function.
    record.route = proxy_request.facts.model;
    if (proxy_request.facts.model.empty()) {
      const bool session = admission.path.operation->source == RouteSource::kSessionModel;
      return ErrorReply{
          400, "BadRequest",
          absl::StrCat("Requests to ", RedactKey(View(request.target()).substr(0, 200)),
                       " must name the route in the body's ",
                       session ? "\"session\": {\"model\"} (or \"model\")" : "\"model\"",
                       " field")};
    }
    if (std::optional<ErrorReply> refusal =
            FindRoute(proxy_request.facts.model, admission, proxy_request.route)) {
      return refusal;
    }
    proxy_request.v1_surface = true;
    if (std::optional<ErrorReply> refusal = RouteStateful(admission, record, proxy_request)) {
      return refusal;
    }
  } else {
    record.route = admission.path.route;
    proxy_request.route = admission.route;
    proxy_request.upstream_suffix = admission.path.suffix;
  }
  if (tenant == nullptr) {
    return std::nullopt;
  }
  return ClaimQuota(request, *tenant, proxy_request, quota);
}

std::optional<ErrorReply> RequestHandler::RouteStateful(const HeadAdmission& admission,
                                                        AccessRecord& record,
                                                        ProxyRequest& proxy_request) const {
  const ApiOperation& operation = *admission.path.operation;
  if (!operation.creates.empty() && proxy_request.facts.store) {
    proxy_request.creates = operation.creates;
  }
  const bool by_path = operation.source == RouteSource::kObjectOwner;
  const RequestFacts& facts = proxy_request.facts;
  // The object that decides: the path's; else a conversation the response joins or a previous
  // response it follows (Azure refuses both at once); else the first the body names.
  const std::vector<ObjectRef>& refs = facts.object_refs;
  const bool in_conversation = !by_path && !facts.conversation.empty();
  const bool by_ref =
      !by_path && !in_conversation && facts.previous_response_id.empty() && !refs.empty();
  const std::string& object_id = by_path           ? admission.path.object_id
                                 : in_conversation ? facts.conversation
                                 : by_ref          ? refs.front().id
                                                   : facts.previous_response_id;
  const absl::string_view param = by_path           ? ""
                                  : in_conversation ? "conversation"
                                  : by_ref          ? refs.front().field
                                                    : "previous_response_id";
  if (object_id.empty() || context_.pins == nullptr) {
    return by_path ? std::optional<ErrorReply>(
                         ErrorReply{404, "not_found", "This gateway keeps no object pins."})
                   : std::nullopt;
  }
  // An id no pin places was created through another agent that has not told this one yet, or
  // before pins were kept: the backends that may hold it are asked.
  const std::optional<PinOwner> owner = context_.pins->Find(object_id);
  std::optional<ErrorReply> refusal =
      owner.has_value()
          ? RouteToOwner(owner, object_id, param, *admission.snapshot, admission.tenant,
                         proxy_request)
          : ProbeForOwner(object_id, param, *admission.snapshot, admission.tenant, proxy_request);
  if (!refusal.has_value() && proxy_request.pinned != nullptr) {
    // Objects used together (a run's thread and assistant) must live on one resource.
    refusal = CheckObjectsTogether(*context_.pins, refs, object_id, *admission.snapshot,
                                   *proxy_request.pinned);
  }
  if (proxy_request.route != nullptr) {
    record.route = proxy_request.route->name;
  }
  record.pinned_object = object_id;
  record.routed_by = owner.has_value() ? "pin" : "probe";
  return refusal;
}

std::optional<ErrorReply> RequestHandler::ClaimQuota(const Request<http::string_body>& request,
                                                     const SnapshotTenant& tenant,
                                                     ProxyRequest& proxy_request,
                                                     QuotaClaim& quota) {
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

asio::awaitable<bool> RequestHandler::AnswerModels(beast::tcp_stream& client,
                                                   const HeadAdmission& admission, bool keep_alive,
                                                   AccessRecord& record) {
  record.tenant = admission.tenant != nullptr ? absl::string_view(admission.tenant->name) : "";
  record.priority =
      admission.tenant != nullptr ? admission.tenant->priority : v1::PRIORITY_UNSPECIFIED;
  ModelListAnswer answer =
      AnswerModelList(*admission.snapshot, admission.tenant, admission.path.object_id);
  if (answer.error.has_value()) {
    co_return co_await Reply(client, *std::move(answer.error), keep_alive, record, admission.start);
  }
  http::response<http::string_body> response{http::status::ok, 11};
  response.set(http::field::content_type, "application/json");
  response.body() = *std::move(answer.json);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  const bool written =
      co_await WriteResponse(client, response, context_.proxy.client_write_timeout);
  record.status = 200;
  record.latency_ms =
      std::chrono::duration<double, std::milli>(SteadyClock::now() - admission.start).count();
  context_.access_log->Write(record);
  Meter(record);  // counted in the metrics like any answer (it carries no usage)
  co_return written&& keep_alive;
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
    if (outcome.tier != nullptr) {
      record.pool = outcome.tier->pool;
      record.tier = outcome.tier->index;
    }
  }
  if (outcome.first_byte.has_value()) {
    record.first_byte_ms =
        std::chrono::duration<double, std::milli>(*outcome.first_byte - start).count();
  }
  record.latency_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
  context_.access_log->Write(record);
  Meter(record);
}

void RequestHandler::Meter(const AccessRecord& record) {
  if (metrics_shard_ != nullptr) {
    metrics_shard_->Record(record);
  }
  if (usage_shard_ != nullptr) {
    const int64_t now_unix_ms = UnixMillisNow();
    usage_shard_->AddTraffic(record, now_unix_ms);
    if (record.metered) {
      usage_shard_->Add(record, now_unix_ms);
    }
  }
}

}  // namespace spillway
