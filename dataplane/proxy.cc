// See proxy.h. One coroutine per request; all state lives in its frame. Upstream I/O is
// written once as a template over the stream type (plain TCP or TLS).
#include "dataplane/proxy.h"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dataplane/entra_token_source.h"
#include "dataplane/http_head.h"
#include "dataplane/local_reply.h"
#include "dataplane/sse_usage_stripper.h"
#include "dataplane/stream_usage.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// Every open stream holds one in its coroutine frame and one as its read buffer: 10k open
// streams must fit in 300 MB (issue 6), so half of nginx's 4 KB proxy buffer.
constexpr std::size_t kRelayChunk = 2 * 1024;
constexpr std::size_t kErrorBodyLimit = 64 * 1024;

enum class AttemptKind {
  kRelayed,    // the response (or part of it) went to the client: the request is over
  kThrottled,  // 429: try the next candidate
  kFailed,     // 5xx, 408, connection error: try the next candidate
  kTimedOut,   // no first byte in time
  kStale,      // a pooled connection was dead before any byte: retry on a fresh one
};

struct AttemptResult {
  AttemptKind kind = AttemptKind::kFailed;
  unsigned status = 0;
  milliseconds retry_after{0};
  std::string error;
};

// By Beast's field code: every hop-by-hop header is a known field, so no string compares.
bool IsHopByHop(http::field name) {
  switch (name) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::proxy_authorization:
    case http::field::te:
    case http::field::trailer:
    case http::field::upgrade:
    case http::field::transfer_encoding:
      return true;
    default:
      return false;
  }
}

// Client headers that never go upstream: hop-by-hop ones, the client's own credentials
// (the backend gets its own), and what the agent sets itself.
bool DropFromClientRequest(const http::fields::value_type& field) {
  switch (field.name()) {
    case http::field::authorization:
    case http::field::host:
    case http::field::content_length:
      return true;
    case http::field::unknown:
      return beast::iequals(field.name_string(), "api-key");
    default:
      return IsHopByHop(field.name());
  }
}

// retry-after-ms, else retry-after in seconds; Azure sends both on 429.
milliseconds RetryAfter(const http::fields& headers) {
  if (auto ms = headers.find("retry-after-ms"); ms != headers.end()) {
    double value = 0;
    if (absl::SimpleAtod(View(ms->value()), &value) && value > 0) {
      return milliseconds(static_cast<int64_t>(value + 0.999));
    }
  }
  if (auto s = headers.find(http::field::retry_after); s != headers.end()) {
    int64_t seconds = 0;
    if (absl::SimpleAtoi(View(s->value()), &seconds) && seconds > 0) {
      return milliseconds(seconds * 1000);
    }
  }
  return milliseconds(0);
}

bool IsRetryableStatus(unsigned status) {
  return status == 408 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool IsEventStream(const http::fields& headers) {
  auto it = headers.find(http::field::content_type);
  return it != headers.end() && absl::StartsWithIgnoreCase(View(it->value()), "text/event-stream");
}

struct Attempt {
  const ProxyOptions& options;
  beast::tcp_stream& client;
  const ProxyRequest& request;
  const SnapshotBackend& backend;
  http::request<http::buffer_body>& upstream_request;
  int attempt_number;
  SteadyTime deadline;
  ProxyOutcome* outcome;
  bool* release_connection;   // the upstream connection may go back to the pool
  std::string* request_head;  // reused across attempts
  // The agent added stream_options.include_usage: strip what it adds from the stream.
  bool strip_stream_usage = false;

  template <class Stream>
  asio::awaitable<AttemptResult> Run(Stream& upstream, beast::tcp_stream& upstream_tcp,
                                     bool reused) {
    AttemptResult result;
    const auto now = SteadyClock::now();
    const auto first_byte_budget = std::min<SteadyClock::duration>(
        options.first_byte_timeout, std::max<SteadyClock::duration>(deadline - now, {}));
    upstream_tcp.expires_after(first_byte_budget);
    WriteRequestHead(upstream_request, *request_head);
    const std::array<asio::const_buffer, 2> request_bytes{
        asio::buffer(*request_head),
        asio::const_buffer(upstream_request.body().data, upstream_request.body().size)};
    auto [write_ec, written] = co_await asio::async_write(upstream, request_bytes, kNoThrow);
    if (write_ec) {
      result.kind = reused ? AttemptKind::kStale
                           : (write_ec == beast::error::timeout ? AttemptKind::kTimedOut
                                                                : AttemptKind::kFailed);
      result.error = absl::StrCat("sending to ", backend.config->id(), ": ", write_ec.message());
      co_return result;
    }
    // Beast reads at most the buffer's free capacity (512 bytes to start): without room, a
    // 13 KB burst of events took 26 reads and 26 writes.
    beast::flat_buffer buffer;
    buffer.reserve(kRelayChunk);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    auto [header_ec, header_bytes] =
        co_await http::async_read_header(upstream, buffer, parser, kNoThrow);
    if (header_ec) {
      if (header_ec == beast::error::timeout) {
        result.kind = AttemptKind::kTimedOut;
        result.error = absl::StrCat(
            backend.config->id(), " sent no response within ",
            std::chrono::duration_cast<milliseconds>(first_byte_budget).count(), " ms");
      } else {
        result.kind = reused && header_bytes == 0 ? AttemptKind::kStale : AttemptKind::kFailed;
        result.error =
            absl::StrCat("reading from ", backend.config->id(), ": ", header_ec.message());
      }
      co_return result;
    }
    result.status = parser.get().result_int();
    if (result.status == 429 || IsRetryableStatus(result.status)) {
      result.kind = result.status == 429 ? AttemptKind::kThrottled : AttemptKind::kFailed;
      result.retry_after = RetryAfter(parser.get().base());
      result.error = absl::StrCat(backend.config->id(), " answered ", result.status);
      // Read the (small) error body so the connection can be reused.
      http::response_parser<http::string_body> error_parser{std::move(parser)};
      error_parser.body_limit(kErrorBodyLimit);
      auto [body_ec, body_bytes] =
          co_await http::async_read(upstream, buffer, error_parser, kNoThrow);
      *release_connection = !body_ec && error_parser.keep_alive() && buffer.size() == 0;
      co_return result;
    }
    co_return co_await Relay(upstream, upstream_tcp, buffer, parser);
  }

  // Streams the upstream response to the client as it arrives: one read, one write, so a
  // slow client slows the backend down instead of growing a buffer.
  template <class Stream>
  asio::awaitable<AttemptResult> Relay(Stream& upstream, beast::tcp_stream& upstream_tcp,
                                       beast::flat_buffer& buffer,
                                       http::response_parser<http::buffer_body>& parser) {
    AttemptResult result;
    result.kind = AttemptKind::kRelayed;
    result.status = parser.get().result_int();
    std::string().swap(*request_head);  // no further attempt: free it for the stream's life
    outcome->status = result.status;
    outcome->backend_id = backend.config->id();
    outcome->backend_config = backend.config;
    auto& response = parser.get();
    const bool upstream_keep_alive = parser.keep_alive();
    const bool event_stream = IsEventStream(response.base());
    const bool strip_usage = strip_stream_usage && event_stream;
    // Framing towards the client: the backend's Content-Length when its bytes pass unchanged,
    // chunked when the agent changes them or the backend gave no length; none for 204/304.
    const boost::optional<std::uint64_t> length = parser.content_length();
    const bool body_less = parser.is_done() && !length.has_value();
    const bool chunked_out = !body_less && (strip_usage || !length.has_value());

    std::string head;
    head.reserve(1024);
    AppendStatusLine(head, result.status, View(response.reason()));
    for (const auto& field : response) {
      const absl::string_view name = View(field.name_string());
      if (IsHopByHop(field.name()) || field.name() == http::field::content_length) {
        continue;
      }
      // Ours replace the backend's x-ratelimit-* (when the tenant has quotas) and x-spillway-*.
      if (field.name() == http::field::unknown && name.size() > 2 && name[1] == '-' &&
          (name[0] == 'x' || name[0] == 'X') &&
          (request.rate_limit.Replaces(name) || absl::StartsWithIgnoreCase(name, "x-spillway-"))) {
        continue;
      }
      AppendHeaderLine(head, name, View(field.value()));
    }
    AppendHeaderLine(head, "x-spillway-backend", backend.config->id());
    absl::StrAppend(&head, "x-spillway-attempts: ", attempt_number, kCrlf);
    request.rate_limit.AppendTo(head);
    if (chunked_out) {
      AppendHeaderLine(head, "Transfer-Encoding", "chunked");
    } else if (length.has_value()) {
      absl::StrAppend(&head, "Content-Length: ", *length, kCrlf);
    }
    if (!request.client_keep_alive) {
      AppendHeaderLine(head, "Connection", "close");
    } else if (request.client_request->version() < 11) {
      AppendHeaderLine(head, "Connection", "keep-alive");
    }
    head += "\r\n";

    UsageScanner usage;
    SseUsageStripper stripper;
    char chunk[kRelayChunk];
    std::string size_line;
    bool head_sent = false;
    bool upstream_failed = false;
    // One read, one write: a slow client slows the backend down instead of growing a buffer.
    do {
      absl::string_view relayed;
      if (!parser.is_done()) {
        response.body().data = chunk;
        response.body().size = sizeof(chunk);
        upstream_tcp.expires_after(options.stream_idle_timeout);
        auto [read_ec, read_bytes] =
            co_await http::async_read_some(upstream, buffer, parser, kNoThrow);
        if (read_ec && read_ec != http::error::need_buffer) {
          upstream_failed = true;
          result.error = absl::StrCat(
              backend.config->id(), " failed mid-response: ",
              read_ec == beast::error::timeout ? std::string("idle timeout") : read_ec.message());
          break;
        }
        // Parse what has already arrived into the same chunk, so a burst of events leaves in
        // one write instead of one per event (as nginx does with proxy_buffering off).
        while (!parser.is_done() && buffer.size() > 0 && response.body().size > 0) {
          beast::error_code put_ec;
          const std::size_t used = parser.put(buffer.data(), put_ec);
          buffer.consume(used);
          if (put_ec || used == 0) {
            break;  // an incomplete chunk, a full buffer, or an error the next read reports
          }
        }
        const std::size_t got = sizeof(chunk) - response.body().size;
        usage.Feed(absl::string_view(chunk, got));
        relayed = absl::string_view(chunk, got);
        if (strip_usage) {
          relayed = stripper.Filter(relayed, parser.is_done());
        }
      }
      const bool last = parser.is_done();
      std::array<asio::const_buffer, 5> out;  // unused entries stay empty
      if (!head_sent) {
        out[0] = asio::buffer(head);
      }
      if (!relayed.empty()) {
        if (chunked_out) {
          WriteChunkSizeLine(relayed.size(), size_line);
          out[1] = asio::buffer(size_line);
          out[3] = asio::buffer(kCrlf.data(), kCrlf.size());
        }
        out[2] = asio::buffer(relayed.data(), relayed.size());
      }
      if (last && chunked_out) {
        out[4] = asio::buffer(kLastChunk.data(), kLastChunk.size());
      }
      if (asio::buffer_size(out) == 0) {
        continue;
      }
      client.expires_after(options.client_write_timeout);
      auto [write_ec, write_bytes] = co_await asio::async_write(client, out, kNoThrow);
      if (write_ec) {
        // The client went away: the backend's answer has nowhere to go.
        outcome->keep_alive = false;
        outcome->error = absl::StrCat("client write failed: ", write_ec.message());
        outcome->usage = usage.Finish();
        *release_connection = false;
        co_return result;
      }
      if (!head_sent) {
        head_sent = true;
        std::string().swap(head);  // a long stream need not keep it: 10k streams, 10 MB
      }
    } while (!parser.is_done());

    if (upstream_failed) {
      outcome->error = result.error;
      outcome->keep_alive = false;
      *release_connection = false;
      if (event_stream && chunked_out) {
        // Bytes may already have gone out, so no retry: end the stream with an event the SDKs
        // surface as an error, and close the chunked body properly.
        constexpr absl::string_view kEvent =
            "event: error\ndata: {\"error\":{\"code\":\"upstream_error\",\"message\":\"The "
            "backend stopped sending before the response was complete.\"}}\n\n";
        WriteChunkSizeLine(kEvent.size(), size_line);
        std::array<asio::const_buffer, 5> out{
            head_sent ? asio::const_buffer() : asio::buffer(head), asio::buffer(size_line),
            asio::buffer(kEvent.data(), kEvent.size()), asio::buffer(kCrlf.data(), kCrlf.size()),
            asio::buffer(kLastChunk.data(), kLastChunk.size())};
        client.expires_after(options.client_write_timeout);
        co_await asio::async_write(client, out, kNoThrow);
      }
      outcome->usage = usage.Finish();
      co_return result;
    }
    outcome->usage = usage.Finish();
    outcome->keep_alive = request.client_keep_alive;
    *release_connection = upstream_keep_alive && buffer.size() == 0;
    co_return result;
  }
};

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

  // The upstream request is built once; per attempt only target, host, key (and for the
  // /openai/v1 surface the body's model) change.
  http::request<http::buffer_body> upstream_request{client_request.method(), "", 11};
  for (const auto& field : client_request) {
    if (!DropFromClientRequest(field)) {
      upstream_request.insert(field.name(), field.name_string(), field.value());
    }
  }
  upstream_request.keep_alive(true);
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
        bool release = false;
        Attempt attempt{options_,         client,   request,  backend,  upstream_request,
                        outcome.attempts, deadline, &outcome, &release, &request_head};
        attempt.strip_stream_usage = !usage_body.empty();
        UpstreamConnection& conn = **connection;
        if (conn.is_tls()) {
          result = co_await attempt.Run(conn.tls(), conn.tcp(), conn.reused);
        } else {
          result = co_await attempt.Run(conn.tcp(), conn.tcp(), conn.reused);
        }
        if (release) {
          pool.Release(backend, *std::move(connection));
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
