// See realtime_proxy.h. The walk over candidates is Proxy::Forward's (candidate_walk.h); what
// differs is one try: a WebSocket handshake on a fresh connection (never pooled: the session
// owns it), then the client's upgrade, then the relay.
#include "dataplane/proxy/realtime_proxy.h"

#include <algorithm>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dataplane/auth/entra_token_source.h"
#include "dataplane/http/client_response.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/proxy/candidate_walk.h"
#include "dataplane/proxy/realtime_relay.h"
#include "dataplane/usage/realtime_usage.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;

// A closing handshake (either side) is given this long before the connection is cut.
constexpr std::chrono::seconds kCloseTimeout{10};
// A backend's refusal of the handshake is relayed to the client; its body is an error object.
constexpr std::size_t kRefusalBodyLimit = 64 * 1024;
// Browsers cannot set headers; OpenAI's own browser convention carries the key in a
// subprotocol. Such an entry never goes to a backend.
constexpr absl::string_view kKeyProtocolPrefix = "openai-insecure-api-key.";

websocket::stream_base::timeout Timeouts(SteadyClock::duration handshake) {
  return websocket::stream_base::timeout{
      std::max<SteadyClock::duration>(handshake, milliseconds(1)),
      websocket::stream_base::none(),  // idleness is the relay's (both directions together)
      false};
}

// The client's Sec-WebSocket-Protocol less any entry that carries a key.
std::string ForwardedProtocols(absl::string_view offered) {
  std::string kept;
  for (absl::string_view entry : absl::StrSplit(offered, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty() || absl::StartsWithIgnoreCase(entry, kKeyProtocolPrefix)) {
      continue;
    }
    absl::StrAppend(&kept, kept.empty() ? "" : ", ", entry);
  }
  return kept;
}

// Client headers that go to the backend with the handshake: those an HTTP request forwards,
// less the handshake's own, which Beast writes for the agent's side of it.
bool ForwardedOnHandshake(const RequestFields::value_type& field) {
  switch (field.name()) {
    case http::field::sec_websocket_key:
    case http::field::sec_websocket_version:
    case http::field::sec_websocket_extensions:
    case http::field::sec_websocket_protocol:  // filtered: ForwardedProtocols
      return false;
    default:
      return ForwardedUpstream(field);
  }
}

// Backend headers of a handshake answer that the client gets: not hop-by-hop, not the
// handshake's own (the agent's accept writes them), not those the agent sets.
bool ForwardedBack(const http::fields::value_type& field, const RateLimitHeaders& rate_limit) {
  switch (field.name()) {
    case http::field::sec_websocket_accept:
    case http::field::sec_websocket_extensions:
    case http::field::sec_websocket_protocol:  // set from the backend's choice
    case http::field::content_length:
    case http::field::server:
    case http::field::date:
      return false;
    default:
      return !IsHopByHop(field.name()) && !AgentSetsHeader(View(field.name_string()), rate_limit);
  }
}

struct RealtimeAttempt {
  const ProxyOptions& options;
  beast::tcp_stream& client;
  const ProxyRequest& request;
  const SnapshotBackend& backend;
  const UpstreamRequest& upstream_request;  // target, Host, credentials (AddressTo)
  int attempt_number;
  SteadyTime deadline;
  ProxyOutcome* outcome;

  // The handshake on `stream` (`tcp` its TCP layer). A refusal says whether another candidate
  // may be tried; a 101 calls `on_open` (the circuit's bookkeeping), then runs the session.
  template <class Stream>
  asio::awaitable<AttemptResult> Run(Stream& stream, beast::tcp_stream& tcp,
                                     absl::FunctionRef<void(const AttemptResult&)> on_open) {
    AttemptResult result;
    WebSocketOver<Stream> upstream(stream);
    upstream.read_message_max(options.realtime_max_message_bytes);
    upstream.auto_fragment(false);  // a message leaves as one frame, as it came
    upstream.set_option(Timeouts(deadline - SteadyClock::now()));
    const std::string protocols = ForwardedProtocols(
        View(request.client_request->operator[](http::field::sec_websocket_protocol)));
    upstream.set_option(websocket::stream_base::decorator([&](websocket::request_type& head) {
      if (request.client_request->count(http::field::user_agent) > 0) {
        head.erase(http::field::user_agent);  // Beast's default gives way to the client's
      }
      for (const auto& field : request.client_request->base()) {
        if (ForwardedOnHandshake(field)) {
          head.insert(field.name_string(), field.value());
        }
      }
      if (!protocols.empty()) {
        head.set(http::field::sec_websocket_protocol, protocols);
      }
      const auto beast_view = [](absl::string_view s) {
        return beast::string_view(s.data(), s.size());
      };
      head.set(http::field::host, beast_view(upstream_request.host));
      if (!upstream_request.credential_name.empty()) {
        head.set(beast_view(upstream_request.credential_name), upstream_request.credential_value);
      }
    }));
    websocket::response_type answer;
    auto [handshake_ec] = co_await upstream.async_handshake(answer, backend.address.host_header,
                                                            upstream_request.target, kNoThrow);
    if (handshake_ec == websocket::error::upgrade_declined) {
      co_return co_await Declined(answer);
    }
    if (handshake_ec) {
      // No session exists before the 101: another candidate may have it.
      result.kind = AttemptKind::kFailed;
      result.error = absl::StrCat("WebSocket handshake with ", backend.config->id(), ": ",
                                  handshake_ec == beast::error::timeout ? std::string("timed out")
                                                                        : handshake_ec.message());
      co_return result;
    }
    result.kind = AttemptKind::kRelayed;
    result.status = 101;
    outcome->status = 101;
    outcome->backend_id = backend.config->id();
    outcome->backend_config = backend.config;
    on_open(result);
    co_await Session(upstream, tcp, answer);
    co_return result;
  }

 private:
  // The backend answered the handshake with an HTTP status instead of 101.
  asio::awaitable<AttemptResult> Declined(websocket::response_type& answer) {
    AttemptResult result;
    result.status = answer.result_int();
    const bool has_retry_after =
        answer.count("retry-after-ms") > 0 || answer.count(http::field::retry_after) > 0;
    if (RefusedUnprocessed(result.status, has_retry_after)) {
      result.kind = result.status == 429 ? AttemptKind::kThrottled : AttemptKind::kFailed;
      result.retry_after =
          RetryAfter(View(answer["retry-after-ms"]), View(answer[http::field::retry_after]));
      result.error = absl::StrCat(backend.config->id(), " answered ", result.status,
                                  " to the WebSocket handshake");
      co_return result;
    }
    // Its answer is the client's, as an HTTP request's 4xx or 5xx would be.
    result.kind = AttemptKind::kRelayed;
    outcome->status = result.status;
    outcome->backend_id = backend.config->id();
    outcome->backend_config = backend.config;
    http::response<http::string_body> response{answer.result(), 11};
    for (const auto& field : answer.base()) {
      if (ForwardedBack(field, request.rate_limit)) {
        response.insert(field.name_string(), field.value());
      }
    }
    response.body() = answer.body().substr(0, kRefusalBodyLimit);
    response.set("x-spillway-backend", backend.config->id());
    response.set("x-spillway-attempts", std::to_string(attempt_number));
    request.rate_limit.ApplyTo(response);
    response.keep_alive(false);
    response.prepare_payload();
    if (result.status >= 400) {
      outcome->error = absl::StrCat(backend.config->id(), " refused the WebSocket handshake");
    }
    co_await WriteResponse(client, response, options.client_write_timeout);
    co_return result;
  }

  // The backend's socket is open: the client's upgrade is accepted (with the backend's headers
  // and subprotocol), then messages are relayed until the session ends.
  template <class Stream>
  asio::awaitable<void> Session(WebSocketOver<Stream>& upstream, beast::tcp_stream& tcp,
                                const websocket::response_type& answer) {
    ClientWebSocket downstream(client);
    downstream.read_message_max(options.realtime_max_message_bytes);
    downstream.auto_fragment(false);
    downstream.set_option(Timeouts(options.client_write_timeout));
    downstream.set_option(websocket::stream_base::decorator([&](websocket::response_type& head) {
      for (const auto& field : answer.base()) {
        if (ForwardedBack(field, request.rate_limit)) {
          head.set(field.name_string(), field.value());
        }
      }
      if (answer.count(http::field::sec_websocket_protocol) > 0) {
        head.set(http::field::sec_websocket_protocol, answer[http::field::sec_websocket_protocol]);
      }
      head.set("x-spillway-backend", backend.config->id());
      head.set("x-spillway-attempts", std::to_string(attempt_number));
      request.rate_limit.ApplyTo(head);
    }));
    auto [accept_ec] = co_await downstream.async_accept(*request.client_request, kNoThrow);
    if (accept_ec) {
      outcome->status = kClientClosedRequest;
      outcome->error =
          absl::StrCat("client left before its upgrade was accepted: ", accept_ec.message());
      upstream.set_option(Timeouts(kCloseTimeout));
      auto [close_ec] = co_await upstream.async_close(websocket::close_code::going_away, kNoThrow);
      (void)close_ec;
      co_return;
    }
    downstream.set_option(Timeouts(kCloseTimeout));
    upstream.set_option(Timeouts(kCloseTimeout));
    RealtimeUsage usage;
    const SnapshotBackend& owner = backend;
    auto meter = [&usage, &owner](absl::string_view text) {
      // Each response's tokens count in the backend's load window as they are reported.
      if (std::optional<Usage> one = usage.OnBackendMessage(text)) {
        owner.state->load.Add(SteadyClock::now(), one->total_tokens);
      }
    };
    RealtimeRelayOptions relay_options;
    relay_options.idle_timeout = options.realtime_idle_timeout;
    relay_options.write_timeout = options.client_write_timeout;
    RealtimeRelayResult relayed =
        co_await RelayRealtime<Stream>(downstream, client, upstream, tcp, relay_options, meter);
    outcome->usage = usage.total();
    outcome->error = std::move(relayed.error);
  }
};

}  // namespace

asio::awaitable<ProxyOutcome> RealtimeProxy::Run(beast::tcp_stream& client,
                                                 const ProxyRequest& request, UpstreamPool& pool,
                                                 FastRandom& random) const {
  ProxyOutcome outcome;
  outcome.keep_alive = false;  // a session, or a refusal: the connection ends either way
  const SteadyTime deadline = SteadyClock::now() + options_.request_timeout;
  UpstreamRequest upstream_request;
  upstream_request.method = "GET";
  const CandidatePlan plan = Router::Plan(*request.route, &FastRandom::Thunk, &random);
  Tally tally;
  // A session's tokens are unknown up front: it is admitted with none, and its responses are
  // added to the backend's load window as they end.
  constexpr int64_t kEstimatedTokens = 0;
  // As Forward: a second pass lets non-batch traffic past the headroom estimate.
  for (int pass = 0; pass < 2 && outcome.attempts < options_.max_attempts; ++pass) {
    if (pass == 1 && (!tally.headroom_refused || request.priority == v1::PRIORITY_BATCH)) {
      break;
    }
    for (const PlannedCandidate& candidate : plan) {
      if (outcome.attempts >= options_.max_attempts || SteadyClock::now() >= deadline) {
        break;
      }
      const SnapshotBackend& backend = request.snapshot->backends()[candidate.backend];
      const SteadyTime now = SteadyClock::now();
      if (!Admitted(backend, candidate, request.priority, kEstimatedTokens, now, tally)) {
        continue;
      }
      if (!AddressTo(backend, request, now, upstream_request)) {
        absl::Status auth =
            co_await backend.entra_token->AwaitAndAuthorize(upstream_request, deadline);
        if (!auth.ok()) {
          backend.state->breaker.OnAbandoned();
          tally.saw_failure = true;
          tally.last_error = std::string(auth.message());
          continue;
        }
      }
      BeginAttempt(backend, kEstimatedTokens, now, outcome);
      RealtimeAttempt attempt{options_,         client,           request,  backend,
                              upstream_request, outcome.attempts, deadline, &outcome};
      // At the 101, before the session: a half-open circuit closes now, not when it ends.
      auto on_open = [&](const AttemptResult& opened) {
        EndAttempt(backend, opened, kEstimatedTokens, outcome, observer_, tally);
      };
      AttemptResult result;
      absl::StatusOr<UpstreamConnectionPtr> connection = co_await pool.Connect(backend);
      if (!connection.ok()) {
        result.kind = AttemptKind::kFailed;
        result.error = std::string(connection.status().message());
      } else if ((*connection)->is_tls()) {
        result = co_await attempt.Run((*connection)->tls(), (*connection)->tcp(), on_open);
      } else {
        result = co_await attempt.Run((*connection)->tcp(), (*connection)->tcp(), on_open);
      }
      const bool opened = result.kind == AttemptKind::kRelayed && result.status == 101;
      if (opened || EndAttempt(backend, result, kEstimatedTokens, outcome, observer_, tally)) {
        co_return outcome;
      }
    }
  }
  auto response = FinalReply(tally, request, deadline, outcome);
  co_await WriteResponse(client, response, options_.client_write_timeout);
  co_return outcome;
}

}  // namespace spillway
