// See proxy.h. One coroutine per request; all state lives in its frame. The wire exchange of
// each attempt is upstream_attempt_*.cc's.
#include "dataplane/proxy/proxy.h"

#include <algorithm>
#include <memory>

#include "dataplane/auth/entra_token_source.h"
#include "dataplane/upstream/h2_session.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/usage/stream_usage.h"
#include "dataplane/proxy/upstream_attempt.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;

}  // namespace

asio::awaitable<ProxyOutcome> Proxy::Forward(beast::tcp_stream& client, const ProxyRequest& request,
                                             UpstreamPool& pool, FastRandom& random) const {
  ProxyOutcome outcome;
  outcome.keep_alive = request.client_keep_alive;
  const auto start = SteadyClock::now();
  const SteadyTime deadline = start + options_.request_timeout;
  const http::request<http::string_body>& client_request = *request.client_request;
  const int64_t estimated_tokens =
      request.facts.EstimatedTokens(options_.default_max_output_tokens);

  // What the agent sets on the upstream request: target, host, the backend's credentials and
  // the length (the /openai/v1 surface's body may be rewritten). The client's other headers
  // are written straight from its request (ForwardedUpstream), not copied into a second
  // header container: that copy was ~3k instructions per request (callgrind).
  http::request<http::buffer_body> upstream_request{client_request.method(), "", 11};
  std::string request_head;
  std::string rewritten_body;
  std::string rewritten_for;  // the deployment rewritten_body names
  // Streams that did not ask for usage get it anyway so metering is exact (stream_usage.h).
  const absl::string_view client_target(client_request.target().data(),
                                        client_request.target().size());
  const std::string usage_body = ShouldAddStreamUsage(request.facts, client_target)
                                     ? AddStreamUsage(client_request.body())
                                     : std::string();
  const std::string& client_body = usage_body.empty() ? client_request.body() : usage_body;

  CandidatePlan plan = Router::Plan(*request.route, &FastRandom::Thunk, &random);
  SteadyTime soonest = SteadyTime::max();
  bool saw_throttle = false;
  bool saw_timeout = false;
  bool saw_failure = false;
  bool headroom_refused = false;
  std::string last_error;

  // Two passes: the second lets non-batch traffic use backends the headroom estimate
  // refused, since the estimate is ours and the backend has the final word.
  for (int pass = 0; pass < 2 && outcome.attempts < options_.max_attempts; ++pass) {
    if (pass == 1 && (!headroom_refused || request.priority == v1::PRIORITY_BATCH)) {
      break;
    }
    for (const PlannedCandidate& candidate : plan) {
      if (outcome.attempts >= options_.max_attempts || SteadyClock::now() >= deadline) {
        break;
      }
      const SnapshotBackend& backend = request.snapshot->backends()[candidate.backend];
      const auto now = SteadyClock::now();
      const Refusal refusal =
          Admit(backend, *candidate.tier, request.priority, pass == 0 ? estimated_tokens : 0, now);
      if (refusal == Refusal::kBlocked) {
        soonest = std::min(soonest, backend.state->breaker.AvailableAt());
        saw_throttle |= backend.state->breaker.State(now) == v1::HEALTH_STATE_THROTTLED;
        continue;
      }
      if (refusal == Refusal::kNoHeadroom) {
        headroom_refused = true;
        soonest = std::min(soonest, now + std::chrono::seconds(1));
        continue;
      }
      if (refusal != Refusal::kNone) {
        continue;
      }
      // /openai/v1 names the deployment in the body: each backend gets its own name, so a
      // failover to a differently named deployment rewrites again.
      const bool needs_rewrite =
          request.v1_surface && request.facts.model != backend.config->deployment();
      if (needs_rewrite && rewritten_for != backend.config->deployment()) {
        absl::StatusOr<std::string> body = ReplaceModel(client_body, backend.config->deployment());
        rewritten_body = body.ok() ? *std::move(body) : client_body;
        rewritten_for = backend.config->deployment();
      }
      const std::string& body = needs_rewrite ? rewritten_body : client_body;
      upstream_request.target(request.v1_surface
                                  ? std::string(client_request.target())
                                  : absl::StrCat(backend.path_prefix, request.upstream_suffix));
      upstream_request.set(http::field::host, backend.address.host_header);
      if (backend.entra_token == nullptr) {
        upstream_request.erase(http::field::authorization);  // an earlier Entra ID attempt's
        upstream_request.set("api-key", backend.api_key);
      } else if (!backend.entra_token->Authorize(upstream_request, now)) {
        // No cached token: wait for the fetch in flight; if none can be had, skip the backend.
        absl::Status auth =
            co_await backend.entra_token->AwaitAndAuthorize(upstream_request, deadline);
        if (!auth.ok()) {
          backend.state->breaker.OnAbandoned();
          saw_failure = true;
          last_error = std::string(auth.message());
          continue;
        }
      }
      upstream_request.content_length(body.size());
      upstream_request.body().data = const_cast<char*>(body.data());
      upstream_request.body().size = body.size();
      upstream_request.body().more = false;

      ++outcome.attempts;
      backend.state->in_flight.fetch_add(1, std::memory_order_relaxed);
      backend.state->load.Add(now, estimated_tokens);
      AttemptResult result;
      for (int connection_try = 0; connection_try < 2; ++connection_try) {
        bool release = false;
        Attempt attempt{options_,         client,   request,  backend,  upstream_request,
                        outcome.attempts, deadline, &outcome, &release, &request_head};
        attempt.strip_stream_usage = !usage_body.empty();
        if (pool.UsesHttp2(backend)) {
          std::shared_ptr<H2Session> session = pool.AcquireH2(backend);
          result = co_await attempt.OverH2(*session);
        } else {
          // (GCC 12 miscompiles co_await inside ?:, hence the plain ifs.)
          absl::StatusOr<UpstreamConnectionPtr> connection;
          if (connection_try == 0) {
            connection = co_await pool.Acquire(backend);
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
      backend.state->in_flight.fetch_sub(1, std::memory_order_relaxed);
      const auto done = SteadyClock::now();
      switch (result.kind) {
        case AttemptKind::kRelayed:
          if (backend.state->breaker.OnSuccess() && observer_ != nullptr) {
            observer_->OnCircuitChanged(backend.config->id(), v1::HEALTH_STATE_HEALTHY,
                                        milliseconds(0), "probe succeeded");
          }
          if (outcome.usage.reported) {
            backend.state->load.Add(done, outcome.usage.total_tokens - estimated_tokens);
          }
          co_return outcome;
        case AttemptKind::kThrottled:
          backend.state->breaker.OnThrottled(done, result.retry_after);
          if (observer_ != nullptr) {
            observer_->OnThrottled(
                backend.config->id(),
                std::chrono::ceil<milliseconds>(backend.state->breaker.AvailableAt() - done));
          }
          soonest = std::min(soonest, backend.state->breaker.AvailableAt());
          saw_throttle = true;
          break;
        case AttemptKind::kTimedOut:
        case AttemptKind::kFailed:
        case AttemptKind::kStale: {
          (result.kind == AttemptKind::kTimedOut ? saw_timeout : saw_failure) = true;
          const milliseconds open_for = backend.state->breaker.OnFailure(done);
          if (open_for.count() > 0 && observer_ != nullptr) {
            observer_->OnCircuitChanged(backend.config->id(), v1::HEALTH_STATE_UNHEALTHY, open_for,
                                        result.error);
          }
          break;
        }
      }
      last_error = result.error;
    }
  }

  // Nothing answered: one Azure-shaped error that says why and when to come back.
  ErrorReply error;
  const auto now = SteadyClock::now();
  const milliseconds wait =
      soonest == SteadyTime::max()
          ? milliseconds(0)
          : std::max(milliseconds(1), std::chrono::ceil<milliseconds>(soonest - now));
  const std::string& route = request.route->name;
  if (saw_timeout || now >= deadline) {
    error = {504, "Timeout",
             absl::StrCat("No backend of route '", route, "' answered in time: ", last_error),
             milliseconds(0), true};
  } else if (saw_failure) {
    error = {502, "BadGateway",
             absl::StrCat("Every backend of route '", route,
                          "' that was tried failed; last: ", last_error),
             wait, true};
  } else if (saw_throttle || headroom_refused) {
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
  outcome.keep_alive = co_await WriteResponse(client, response, options_.client_write_timeout) &&
                       request.client_keep_alive;
  co_return outcome;
}

}  // namespace spillway
