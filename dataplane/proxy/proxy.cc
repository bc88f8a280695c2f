// See proxy.h. One coroutine per request; all state lives in its frame. The wire exchange of
// each attempt is upstream_attempt_*.cc's.
#include "dataplane/proxy/proxy.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/log_event.h"
#include "dataplane/auth/entra_token_source.h"
#include "dataplane/http/client_response.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/proxy/candidate_walk.h"
#include "dataplane/proxy/upload_body.h"
#include "dataplane/proxy/upstream_attempt.h"
#include "dataplane/routing/query_params.h"
#include "dataplane/upstream/h2_session.h"
#include "dataplane/usage/stream_usage.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;

// The bodies an upstream request carries: the client's, with stream usage asked for when the
// client did not (metering stays exact, stream_usage.h), and on the /openai/v1 surface, which
// names the deployment in the body, a copy naming each backend's own deployment.
class UpstreamBodies {
 public:
  explicit UpstreamBodies(const ProxyRequest& request)
      : usage_body_(ShouldAddStreamUsage(request.facts, View(request.client_request->target()))
                        ? AddStreamUsage(request.client_request->body())
                        : std::string()) {}

  bool adds_stream_usage() const { return !usage_body_.empty(); }

  // A failover to a differently named deployment rewrites again; to the same name it does not.
  const std::string& For(const ProxyRequest& request, const SnapshotBackend& backend) {
    const std::string& client_body =
        usage_body_.empty() ? request.client_request->body() : usage_body_;
    const std::string& deployment = backend.config->deployment();
    // A call on an object by id has no body, hence no model to rewrite.
    if (!request.v1_surface || request.facts.model.empty() || request.facts.model == deployment) {
      return client_body;
    }
    if (rewritten_for_ != deployment) {
      absl::StatusOr<std::string> body =
          ReplaceModel(client_body, deployment, request.model_in_session);
      rewritten_ = body.ok() ? *std::move(body) : client_body;
      rewritten_for_ = deployment;
    }
    return rewritten_;
  }

 private:
  const std::string usage_body_;
  std::string rewritten_;
  std::string rewritten_for_;  // the deployment rewritten_ names
};

}  // namespace

// Whether `backend` may be tried in this pass; if not, notes when it may be.
bool Admitted(const SnapshotBackend& backend, const PlannedCandidate& candidate,
              v1::Priority priority, int64_t estimated_tokens, SteadyTime now, Tally& tally) {
  switch (Admit(backend, *candidate.tier, priority, estimated_tokens, now)) {
    case Refusal::kNone:
      return true;
    case Refusal::kBlocked:
      tally.passed_over = true;
      tally.soonest = std::min(tally.soonest, backend.state->breaker.AvailableAt());
      tally.saw_throttle |= backend.state->breaker.State(now) == v1::HEALTH_STATE_THROTTLED;
      return false;
    case Refusal::kNoHeadroom:
      tally.headroom_refused = true;
      tally.soonest = std::min(tally.soonest, now + std::chrono::seconds(1));
      return false;
    case Refusal::kUnusable:
      return false;
  }
  return false;
}

// What the agent sets on the upstream request for `backend`: target, host and credentials.
// The client's other headers are written straight from its request (ForwardedUpstream), not
// copied into a second header container: that copy was ~3k instructions per request
// (callgrind). False when the backend's Entra ID token is not cached: the caller awaits it.
bool AddressTo(const SnapshotBackend& backend, const ProxyRequest& request, SteadyTime now,
               UpstreamRequest& upstream) {
  if (!request.route_param.empty()) {
    upstream.target.assign(RewriteRouteParam(View(request.client_request->target()),
                                             request.route_param, backend.config->deployment()));
  } else if (request.v1_surface) {
    const absl::string_view target = View(request.client_request->target());
    upstream.target.assign(target.data(), target.size());
  } else {
    upstream.target.assign(backend.path_prefix.data(), backend.path_prefix.size());
    upstream.target.append(request.upstream_suffix.data(), request.upstream_suffix.size());
  }
  upstream.host = backend.address.host_header;
  if (backend.entra_token == nullptr) {
    upstream.SetCredential("api-key", backend.api_key);
    return true;
  }
  upstream.ClearCredential();  // no earlier attempt's key goes to this backend
  return backend.entra_token->Authorize(upstream, now);
}

namespace {

void SetBody(const std::string& body, const UploadBody* upload, UpstreamRequest& upstream) {
  if (upload != nullptr) {
    // Framed as the client framed it; the bytes follow the head (UploadBody::CopyTo).
    upstream.content_length = upload->content_length();
    upstream.chunked = !upstream.content_length.has_value();
    upstream.body = {};
    return;
  }
  upstream.content_length = body.size();
  upstream.chunked = false;
  upstream.body = body;
}

}  // namespace

void BeginAttempt(const SnapshotBackend& backend, int64_t estimated_tokens, SteadyTime now,
                  ProxyOutcome& outcome) {
  ++outcome.attempts;
  backend.state->in_flight.fetch_add(1, std::memory_order_relaxed);
  backend.state->attempts.fetch_add(1, std::memory_order_relaxed);
  backend.state->load.Add(now, estimated_tokens);
}

namespace {

// A circuit's state as events name it; a throttled backend's circuit is closed.
const char* CircuitName(v1::HealthState state) {
  switch (state) {
    case v1::HEALTH_STATE_UNHEALTHY:
      return "open";
    case v1::HEALTH_STATE_HALF_OPEN:
      return "half_open";
    default:
      return "closed";
  }
}

// Counts a failure; when it opens the circuit (or reopens it after a failed probe), the log
// and the observer hear of it.
void OnFailed(const SnapshotBackend& backend, const AttemptResult& result, SteadyTime now,
              BackendObserver* observer) {
  CircuitBreaker& breaker = backend.state->breaker;
  // Read before the failure counts, to say which way the circuit moved: failures only, never
  // the path of a request that succeeds.
  const v1::HealthState before = breaker.State(now);
  const milliseconds open_for = breaker.OnFailure(now);
  if (open_for.count() == 0) {
    return;
  }
  // A request admitted before the circuit opened, failing after, only lengthens the open
  // period: no change to log.
  if (before != v1::HEALTH_STATE_UNHEALTHY) {
    const std::string& id = backend.config->id();
    const int failures = breaker.consecutive_failures();
    LogEvent(spdlog::level::warn, "circuit_changed",
             {{"backend", id},
              {"from", CircuitName(before)},
              {"to", "open"},
              {"reason", result.error},
              {"open_ms", open_for.count()},
              {"failures", failures}},
             absl::StrCat("circuit of backend ", id, " opened for ", open_for.count(), " ms after ",
                          failures, " consecutive failure(s): ", result.error));
  }
  if (observer != nullptr) {
    observer->OnCircuitChanged(backend.config->id(), v1::HEALTH_STATE_UNHEALTHY, open_for,
                               result.error);
  }
}

// A probe succeeded: the circuit closes.
void OnClosed(const SnapshotBackend& backend, BackendObserver* observer) {
  const std::string& id = backend.config->id();
  LogEvent(
      spdlog::level::info, "circuit_changed",
      {{"backend", id}, {"from", "half_open"}, {"to", "closed"}, {"reason", "probe succeeded"}},
      absl::StrCat("circuit of backend ", id, " closed: probe succeeded"));
  if (observer != nullptr) {
    observer->OnCircuitChanged(id, v1::HEALTH_STATE_HEALTHY, milliseconds(0), "probe succeeded");
  }
}

// A 429: the backend cools down for its retry-after, and the observer spreads the word.
void OnThrottled(const SnapshotBackend& backend, const AttemptResult& result, SteadyTime now,
                 BackendObserver* observer) {
  CircuitBreaker& breaker = backend.state->breaker;
  backend.state->throttled.fetch_add(1, std::memory_order_relaxed);
  breaker.OnThrottled(now, result.retry_after);
  if (observer != nullptr) {
    observer->OnThrottled(backend.config->id(),
                          std::chrono::ceil<milliseconds>(breaker.AvailableAt() - now));
  }
}

}  // namespace

// Tells the backend's circuit (and the observer) how the attempt went; true when the request
// is over: the answer went to the client, or the client left.
bool EndAttempt(const SnapshotBackend& backend, const AttemptResult& result,
                int64_t estimated_tokens, const ProxyOutcome& outcome, BackendObserver* observer,
                Tally& tally) {
  backend.state->in_flight.fetch_sub(1, std::memory_order_relaxed);
  const auto done = SteadyClock::now();
  CircuitBreaker& breaker = backend.state->breaker;
  switch (result.kind) {
    case AttemptKind::kClientGone:
      breaker.OnAbandoned();  // the backend's health is unknown
      return true;
    case AttemptKind::kRelayed:
      if (result.status == 429) {
        // A pinned request's owner refused it; the client has its answer, and others
        // steer around the backend as after any 429.
        OnThrottled(backend, result, done, observer);
        return true;
      }
      if (IsRetryableStatus(result.status)) {
        // The backend's own error, relayed as it came (docs/choices.md): still a failure.
        OnFailed(backend, result, done, observer);
        return true;
      }
      if (breaker.OnSuccess()) {
        OnClosed(backend, observer);
      }
      if (outcome.usage.reported) {
        backend.state->load.Add(done, outcome.usage.total_tokens - estimated_tokens);
      }
      return true;
    case AttemptKind::kNotHere:
      // The backend is healthy; it just does not hold the object.
      tally.not_here = result.status;
      break;
    case AttemptKind::kThrottled:
      OnThrottled(backend, result, done, observer);
      tally.soonest = std::min(tally.soonest, breaker.AvailableAt());
      tally.saw_throttle = true;
      break;
    case AttemptKind::kTimedOut:
    case AttemptKind::kBroken:
    case AttemptKind::kFailed:
    case AttemptKind::kStale:
      (result.kind == AttemptKind::kTimedOut ? tally.saw_timeout : tally.saw_failure) = true;
      tally.final = result.kind == AttemptKind::kTimedOut || result.kind == AttemptKind::kBroken;
      OnFailed(backend, result, done, observer);
      break;
  }
  tally.last_error = result.error;
  return false;
}

namespace {

// A probe found no backend that says it holds the object. When one could not be asked (its
// circuit open, throttled, failing) the object may be there: 429 or 503, to come back later.
ErrorReply ProbeReply(const Tally& tally, const ProxyRequest& request, milliseconds wait) {
  const std::string object = request.pinned_object.substr(0, 100);
  if (tally.saw_throttle || tally.saw_failure || tally.passed_over) {
    const bool throttled = tally.saw_throttle;
    return {
        throttled ? 429u : 503u, throttled ? "429" : "ServiceUnavailable",
        absl::StrCat(
            "No backend this key may use says it holds '", object, "', and ",
            throttled ? "one that may hold it is throttled"
                      : "one that may hold it is not available",
            tally.last_error.empty() ? std::string() : absl::StrCat(": ", tally.last_error), "."),
        wait, true};
  }
  if (tally.not_here == 400 && request.probe_param == "previous_response_id") {
    return {400, "previous_response_not_found",
            absl::StrCat("Previous response with id '", object, "' not found."), milliseconds(0),
            false};
  }
  return {404, "not_found", absl::StrCat("No backend this key may use holds '", object, "'."),
          milliseconds(0), false};
}

}  // namespace

// Nothing answered: one Azure-shaped error that says why and when to come back.
http::response<http::string_body> FinalReply(const Tally& tally, const ProxyRequest& request,
                                             SteadyTime deadline, ProxyOutcome& outcome) {
  ErrorReply error;
  const auto now = SteadyClock::now();
  const milliseconds wait =
      tally.soonest == SteadyTime::max()
          ? milliseconds(0)
          : std::max(milliseconds(1), std::chrono::ceil<milliseconds>(tally.soonest - now));
  const std::string& route = request.route->name;
  if (!request.probe.empty() && !tally.saw_timeout && !tally.final) {
    error = ProbeReply(tally, request, wait);
  } else if (request.pinned != nullptr && !tally.saw_timeout && !tally.final) {
    // Only the owner has the object: say which, and why it cannot be reached now.
    const bool throttled = tally.saw_throttle;
    error = {throttled ? 429u : 503u, throttled ? "429" : "ServiceUnavailable",
             absl::StrCat("'", request.pinned_object, "' is held by backend '",
                          request.pinned->config->id(), "', which is ",
                          throttled ? "throttled" : "not available",
                          tally.last_error.empty() ? std::string(" (its circuit is open)")
                                                   : absl::StrCat(": ", tally.last_error),
                          ". No other backend has it."),
             wait, true};
  } else if (tally.saw_timeout || (now >= deadline && !tally.final)) {
    error = {504, "Timeout",
             absl::StrCat("No backend of route '", route, "' answered in time: ", tally.last_error),
             milliseconds(0), true};
  } else if (tally.final) {
    error = {502, "BadGateway",
             absl::StrCat("The backend of route '", route, "' failed after it had the request",
                          " (not sent again: it may have been processed): ", tally.last_error),
             milliseconds(0), true};
  } else if (tally.saw_failure) {
    error = {502, "BadGateway",
             absl::StrCat("Every backend of route '", route,
                          "' that was tried failed; last: ", tally.last_error),
             wait, true};
  } else if (tally.saw_throttle || tally.headroom_refused) {
    error = {429, "429",
             absl::StrCat("Every backend of route '", route, "' is throttled. Please retry after ",
                          wait.count(), " ms."),
             wait, true};
  } else {
    error = {503, "ServiceUnavailable",
             absl::StrCat("No backend of route '", route, "' is available right now"), wait, true};
  }
  outcome.status = error.status;
  outcome.error = error.message;
  error.rate_limit = request.rate_limit;
  auto response = MakeErrorResponse(error, request.client_keep_alive);
  response.set("x-spillway-attempts", std::to_string(outcome.attempts));
  return response;
}

// The attempt with its connection retry stays inline: as a coroutine of its own it would
// cost a frame allocation per attempt on the request path.
asio::awaitable<ProxyOutcome> Proxy::Forward(beast::tcp_stream& client, const ProxyRequest& request,
                                             UpstreamPool& pool, FastRandom& random) const {
  ProxyOutcome outcome;
  outcome.keep_alive = request.client_keep_alive;
  // The request timeout bounds the search for a backend; it never cuts a first-byte wait short
  // that the route allows longer.
  const SteadyTime deadline =
      SteadyClock::now() +
      std::max(options_.request_timeout, FirstByteTimeout(options_, *request.route));
  const int64_t estimated_tokens =
      request.facts.EstimatedTokens(options_.default_max_output_tokens);
  UpstreamRequest upstream_request(request.client_request->get_allocator().arena());
  upstream_request.method = View(request.client_request->method_string());
  UpstreamBodies bodies(request);
  CandidatePlan plan;
  // The owner's own answer decides; the headroom estimate does not refuse it.
  static const SnapshotTier kOwnerTier;
  int max_attempts = options_.max_attempts;
  if (request.pinned != nullptr) {
    plan.push_back(PlannedCandidate{request.pinned_index, &kOwnerTier});
  } else if (!request.probe.empty()) {
    for (const uint32_t backend : request.probe) {
      plan.push_back(PlannedCandidate{backend, &kOwnerTier});
    }
    max_attempts += static_cast<int>(plan.size());  // a "not here" is no failed attempt
  } else {
    plan = Router::Plan(*request.route, &FastRandom::Thunk, &random);
  }
  Tally tally;

  // Two passes: the second lets non-batch traffic use backends the headroom estimate
  // refused, since the estimate is ours and the backend has the final word.
  for (int pass = 0; pass < 2 && outcome.attempts < max_attempts && !tally.final; ++pass) {
    if (pass == 1 && (!tally.headroom_refused || request.priority == v1::PRIORITY_BATCH)) {
      break;
    }
    const bool planned = request.pinned == nullptr && request.probe.empty();
    const int64_t admit_tokens = pass == 0 && planned ? estimated_tokens : 0;
    for (std::size_t index = 0; index < plan.size(); ++index) {
      const PlannedCandidate& candidate = plan[index];
      if (outcome.attempts >= max_attempts || SteadyClock::now() >= deadline || tally.final) {
        break;
      }
      const SnapshotBackend& backend = request.snapshot->backends()[candidate.backend];
      const auto now = SteadyClock::now();
      if (!Admitted(backend, candidate, request.priority, admit_tokens, now, tally)) {
        continue;
      }
      if (!AddressTo(backend, request, now, upstream_request)) {
        // No cached token: wait for the fetch in flight; if none can be had, skip the backend.
        absl::Status auth =
            co_await backend.entra_token->AwaitAndAuthorize(upstream_request, deadline);
        if (!auth.ok()) {
          backend.state->breaker.OnAbandoned();
          tally.saw_failure = true;
          tally.last_error = std::string(auth.message());
          continue;
        }
      }
      if (request.upload != nullptr) {
        // A model field read ahead names this backend's deployment (docs/uploads.md).
        request.upload->SetReplacement(backend.config->deployment());
      }
      SetBody(bodies.For(request, backend), request.upload, upstream_request);
      BeginAttempt(backend, estimated_tokens, now, outcome);
      outcome.tier = candidate.tier;

      // A pooled HTTP/1.1 connection found dead before any byte (kStale) is retried once on
      // a fresh one. (GCC 12 miscompiles co_await inside ?:, hence the plain ifs.)
      AttemptResult result;
      for (int connection_try = 0; connection_try < 2; ++connection_try) {
        bool release = false;
        Attempt attempt{options_,         client,   request,  backend, upstream_request,
                        outcome.attempts, deadline, &outcome, &release};
        attempt.strip_stream_usage = bodies.adds_stream_usage();
        // The last candidate's "not found" is the client's answer, unless one that may hold
        // the object could not be asked.
        attempt.probe_continues =
            !request.probe.empty() && (index + 1 < plan.size() || tally.saw_throttle ||
                                       tally.saw_failure || tally.passed_over);
        if (request.upload == nullptr && pool.UsesHttp2(backend)) {
          std::shared_ptr<H2Session> session = pool.AcquireH2(backend);
          result = co_await attempt.OverH2(*session);
        } else {
          absl::StatusOr<UpstreamConnectionPtr> connection;
          // An upload gets a fresh connection: on a pooled one the backend may have closed
          // while idle, found only once body bytes that cannot be sent again are gone.
          // (An idle one is taken without awaiting: Acquire's coroutine frame was an
          // allocation per request.)
          UpstreamConnectionPtr idle;
          if (connection_try == 0 && request.upload == nullptr) {
            idle = pool.TakeIdle(backend);
          }
          if (idle != nullptr) {
            connection = std::move(idle);
          } else {
            connection = co_await pool.Connect(backend);
          }
          if (!connection.ok()) {
            result.kind = AttemptKind::kFailed;
            result.error = std::string(connection.status().message());
            break;
          }
          result = co_await attempt.OverHttp1(**connection);
          if (release) {
            pool.Release(backend, *std::move(connection));
          }
        }
        if (result.kind != AttemptKind::kStale) {
          break;
        }
      }
      if (EndAttempt(backend, result, estimated_tokens, outcome, observer_, tally)) {
        co_return outcome;
      }
      if (request.upload != nullptr && request.upload->started()) {
        tally.final = true;  // the body is gone: nothing to send another backend
      }
    }
  }

  auto response = FinalReply(tally, request, deadline, outcome);
  outcome.keep_alive = co_await WriteResponse(client, response, options_.client_write_timeout) &&
                       request.client_keep_alive;
  co_return outcome;
}

}  // namespace spillway
