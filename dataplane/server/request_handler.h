// The life of one client request after it is parsed: classify the path, authenticate the
// tenant, find the route, read the body's facts, forward through the proxy, log it.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "dataplane/http/local_reply.h"
#include "dataplane/ops/agent_metrics.h"
#include "dataplane/ops/ops_endpoints.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/proxy/realtime_proxy.h"
#include "dataplane/routing/api_path.h"
#include "dataplane/routing/object_pins.h"
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
  std::chrono::milliseconds header_timeout{10000};  // a started head must be whole by then
  uint64_t body_limit = 32 * 1024 * 1024;           // Azure accepts large multimodal bodies
  // Streamed uploads (docs/uploads.md), for routes without their own limit.
  uint64_t max_upload_bytes = 512 * 1024 * 1024;
  // Bytes of request bodies all connections may hold at once, and those held now.
  int64_t body_memory_limit = int64_t{1} << 30;
  std::atomic<int64_t> body_memory_in_use{0};
  // Client connections open at once across threads (0: no limit), and those open now.
  int64_t max_connections = 0;
  std::atomic<int64_t> connections{0};
  SnapshotSource snapshots;
  AccessLog* access_log = nullptr;
  BackendObserver* backend_observer = nullptr;  // set when a control plane is in use
  TenantLimiter* tenant_limiter = nullptr;      // tenants' TPM/RPM quotas (null: none)
  UsageMeter* usage_meter = nullptr;            // per-minute usage for chargeback
  AgentMetrics* metrics = nullptr;              // GET /metrics (null: none)
  ObjectPins* pins = nullptr;  // stateful objects' owners (docs/pinning.md); null: none kept
  std::chrono::seconds pin_retention{30 * 24 * 3600};  // Azure keeps responses 30 days
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
        realtime_(context.proxy, context.backend_observer),
        ops_(context.region, context.requests_in_flight, context.tenant_limiter, context.metrics,
             context.pins),
        quotas_(context.tenant_limiter),
        usage_shard_(context.usage_meter != nullptr ? context.usage_meter->AddShard() : nullptr),
        metrics_shard_(context.metrics != nullptr ? context.metrics->AddShard() : nullptr) {}

  // What the head alone decided, carried from AdmitHead to Handle (or Refuse).
  struct HeadAdmission {
    SteadyTime start;
    // A copy, not a reference into the per-thread cache: a table published while the request
    // is suspended must not free the routes and backends it is using.
    RoutingSnapshotPtr snapshot;
    ApiPath path;
    const SnapshotTenant* tenant = nullptr;  // null with open access
    bool authenticated = false;              // the client is known: its answers are metered
    // Found from the path (kDeployment) or the query (Realtime's model= or deployment=).
    const SnapshotRoute* route = nullptr;
  };

  // Before any body byte is read: the operation is one the gateway knows, the key is valid,
  // and a route named in the path exists and is the tenant's (issue 15: an unauthenticated
  // client must not make the agent hold a body). Fills `admission` or returns the refusal.
  std::optional<ErrorReply> AdmitHead(const RequestHead& head, HeadAdmission& admission);
  // Answers a refusal (logged and metered like any answer); the caller then closes.
  asio::awaitable<void> Refuse(beast::tcp_stream& client, const RequestHead& head, ErrorReply error,
                               const HeadAdmission& admission);
  // A Realtime WebSocket upgrade AdmitHead admitted (it has no body): opens the backend's
  // socket, accepts the client's upgrade and relays the session until it ends, or answers the
  // HTTP error that kept it from opening; logged and metered once, at its end. The connection
  // is done afterwards.
  asio::awaitable<void> HandleRealtime(beast::tcp_stream& client,
                                       const Request<http::string_body>& request,
                                       const HeadAdmission& admission);
  // An upload AdmitHead admitted (BodyHandling::kStreamed; request_handler_upload.cc): its
  // body, not yet read, goes through `buffer` (what followed the head) and the client's socket
  // straight to one backend. Returns whether the connection may serve another request.
  asio::awaitable<bool> HandleUpload(beast::tcp_stream& client, beast::flat_buffer& buffer,
                                     RequestParser<http::string_body>& head_parser,
                                     const HeadAdmission& admission);
  // On the admin listener (--admin-listen): the operations endpoints to anyone, nothing else.
  asio::awaitable<bool> HandleAdmin(beast::tcp_stream& client,
                                    const Request<http::string_body>& request);
  // Answers one request AdmitHead admitted, its body read; returns whether the connection
  // may serve another. `buffer` is the connection's read buffer, kept from one request to the
  // next but freed (when it holds nothing) for as long as a stream is relayed.
  asio::awaitable<bool> Handle(beast::tcp_stream& client, beast::flat_buffer& buffer,
                               const Request<http::string_body>& request,
                               const HeadAdmission& admission);

 private:
  // AdmitHead's steps, in order; each returns the error when the request goes no further.
  // Unknown operations, methods and paths, or no routing table yet:
  std::optional<ErrorReply> CheckPath(const RequestHead& head, const ApiPath& path,
                                      const RoutingSnapshot* snapshot) const;
  // The client's tenant (null with open access), from its key.
  std::optional<ErrorReply> Authenticate(const RequestHead& head, HeadAdmission& admission) const;
  // The route `name` (from the path or the body): it exists here and the tenant may use it.
  std::optional<ErrorReply> FindRoute(absl::string_view name, const HeadAdmission& admission,
                                      const SnapshotRoute*& route) const;
  // After the body: its facts, the route it names on /openai/v1, and the tenant's quota;
  // fills `proxy_request` (and `quota`) or returns the error to answer with instead.
  std::optional<ErrorReply> AdmitBody(const Request<http::string_body>& request,
                                      const HeadAdmission& admission, bool keep_alive,
                                      AccessRecord& record, ProxyRequest& proxy_request,
                                      QuotaClaim& quota);
  // A stateful call's owner: the object its path names, or its previous_response_id's.
  std::optional<ErrorReply> RouteStateful(const HeadAdmission& admission, AccessRecord& record,
                                          ProxyRequest& proxy_request) const;
  // The tenant's TPM/RPM quota: charged up front, corrected once the response has ended.
  std::optional<ErrorReply> ClaimQuota(const Request<http::string_body>& request,
                                       const SnapshotTenant& tenant, ProxyRequest& proxy_request,
                                       QuotaClaim& quota);
  // An upload's route (request_handler_upload.cc): the path's, the tenant's default for a
  // file, none yet for a form naming its model (ReadFormModel finds it).
  std::optional<ErrorReply> RouteUpload(const HeadAdmission& admission,
                                        ProxyRequest& proxy_request) const;
  // Reads an upload ahead to its form's "model" field, which names the route.
  asio::awaitable<std::optional<ErrorReply>> ReadFormModel(
      const Request<http::string_body>& request, const HeadAdmission& admission, UploadBody& upload,
      ProxyRequest& proxy_request);
  // The route's upload limit, else the agent's.
  uint64_t UploadLimit(const SnapshotRoute* route) const;
  // GET /openai/v1/models[/{id}]: the tenant's routes, from the table (model_list.h).
  asio::awaitable<bool> AnswerModels(beast::tcp_stream& client, const HeadAdmission& admission,
                                     bool keep_alive, AccessRecord& record);
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
  RealtimeProxy realtime_;
  OpsEndpoints ops_;
  TenantQuotaCache quotas_;
  UsageShard* usage_shard_;      // this thread's part of the usage meter; null: not metering
  MetricsShard* metrics_shard_;  // this thread's part of the metrics; null: none
};

}  // namespace spillway
