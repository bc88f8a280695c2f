// See upstream_attempt.h: the HTTP/2 exchange. The request leaves as one stream of a shared
// connection; the answer is relayed as its DATA frames arrive, and each relayed byte reopens
// the stream's window, so a slow client slows only its own stream.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dataplane/http/client_response.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/socket_deadline.h"
#include "dataplane/proxy/upstream_attempt.h"
#include "dataplane/routing/created_object.h"
#include "dataplane/upstream/h2_session.h"
#include "dataplane/usage/sse_usage_stripper.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;

absl::string_view Find(const std::vector<std::pair<std::string, std::string>>& headers,
                       absl::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

// HTTP/2 wants lowercase names and no connection-specific headers; `names` holds the lowercase
// copies the returned views point into. The client's forwarded headers, then the agent's own.
std::vector<H2Header> RequestHeaders(const UpstreamRequest& request, const RequestFields& client,
                                     const UpstreamAddress& address, std::string& names) {
  // The client's names, the credential's, and the length's digits.
  std::size_t total = request.credential_name.size() + 20;
  for (const auto& field : client) {
    total += field.name_string().size();
  }
  names.clear();
  names.reserve(total);  // no reallocation below: the views stay valid
  std::vector<H2Header> headers;
  headers.reserve(24);
  headers.push_back({":method", request.method});
  headers.push_back({":scheme", address.tls ? "https" : "http"});
  headers.push_back({":authority", address.host_header});  // the Host
  headers.push_back({":path", request.target});
  auto add = [&](absl::string_view name, absl::string_view value) {
    const std::size_t start = names.size();
    for (char c : name) {
      names.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    }
    headers.push_back({absl::string_view(names).substr(start), value});
  };
  for (const auto& field : client) {
    if (ForwardedUpstream(field)) {
      add(View(field.name_string()), View(field.value()));
    }
  }
  if (!request.credential_name.empty()) {
    add(request.credential_name, request.credential_value);
  }
  if (request.content_length.has_value()) {  // an upload (chunked) never goes over HTTP/2
    const std::size_t start = names.size();
    absl::StrAppend(&names, *request.content_length);
    headers.push_back({"content-length", absl::string_view(names).substr(start)});
  }
  return headers;
}

// ClientWatch's callback: the waiting attempt looks at its watch and gives the stream up, which
// resets it (RST_STREAM CANCEL) so the backend stops generating.
void WakeStream(void* stream) { static_cast<H2Stream*>(stream)->Wake(); }

}  // namespace

asio::awaitable<AttemptResult> Attempt::OverH2(H2Session& session) {
  AttemptResult result;
  const auto first_byte_budget = FirstByteBudget();
  const SteadyTime opened_at = SteadyClock::now();
  const SteadyTime first_byte_deadline = opened_at + first_byte_budget;
  H2Stream stream(client.get_executor());
  {
    std::string names;
    const std::vector<H2Header> headers =
        RequestHeaders(upstream_request, request.client_request->base(), backend.address, names);
    absl::Status opened = session.Open(stream, headers, upstream_request.body);
    if (!opened.ok()) {
      result.kind = AttemptKind::kStale;  // full or going away: another connection
      result.error = std::string(opened.message());
      co_return result;
    }
  }
  ClientWatch watch(client, &WakeStream, &stream);
  while (!stream.has_response() && !stream.failed() && !watch.gone()) {
    if (!co_await stream.Wait(first_byte_deadline)) {
      session.SuspectSilence(opened_at);
      result.kind = AttemptKind::kTimedOut;
      result.error =
          absl::StrCat(backend.config->id(), " sent no response within ",
                       std::chrono::duration_cast<milliseconds>(first_byte_budget).count(), " ms");
      co_return result;  // the stream's destructor cancels it
    }
  }
  if (watch.Stop()) {
    OnClientGone(result);
    co_return result;  // the stream's destructor cancels it
  }
  if (!stream.has_response()) {
    if (stream.retryable()) {
      result.kind = AttemptKind::kStale;
    } else {
      result.kind = stream.request_sent() ? AttemptKind::kBroken : AttemptKind::kFailed;
    }
    result.error = stream.error();
    co_return result;
  }
  result.status = stream.status();
  const absl::string_view retry_after_ms = Find(stream.headers(), "retry-after-ms");
  const absl::string_view retry_after = Find(stream.headers(), "retry-after");
  if (result.status == 429 || result.status == 503) {
    result.retry_after = RetryAfter(retry_after_ms, retry_after);
  }
  if (TriesAnotherOn(result.status, !retry_after_ms.empty() || !retry_after.empty())) {
    result.kind = RefusalKind(result.status);
    result.error = absl::StrCat(backend.config->id(), " answered ", result.status);
    co_return result;  // cancelling the stream is all the cleanup HTTP/2 needs
  }

  BeginRelay(result);
  const bool event_stream = IsEventStreamType(Find(stream.headers(), "content-type"));
  const bool strip_usage = strip_stream_usage && event_stream;
  std::optional<uint64_t> length;
  if (uint64_t n = 0; absl::SimpleAtoi(Find(stream.headers(), "content-length"), &n)) {
    length = n;
  }
  const bool body_less = stream.ended() && stream.body().empty() && !length.has_value();
  ClientResponse client_response(result.status, "", request.rate_limit);
  for (const auto& [name, value] : stream.headers()) {
    if (name != "content-length") {
      client_response.AddBackendHeader(name, value);
    }
  }
  client_response.FinishHead(backend.config->id(), attempt_number,
                             !body_less && (strip_usage || !length.has_value()), length,
                             request.client_keep_alive, request.client_request->version() < 11);

  UsageScanner usage;
  CreatedObjectScanner created(!request.creates.empty() && result.status == 200);
  SseUsageStripper stripper;
  std::string taken;
  bool upstream_failed = false;
  for (;;) {
    while (stream.body().empty() && !stream.ended() && !stream.failed()) {
      if (!co_await stream.Wait(SteadyClock::now() + options.stream_idle_timeout)) {
        break;
      }
    }
    if (stream.body().empty() && !stream.ended()) {
      upstream_failed = true;
      result.error =
          stream.failed()
              ? absl::StrCat(backend.config->id(), " failed mid-response: ", stream.error())
              : absl::StrCat(backend.config->id(), " failed mid-response: idle timeout");
      break;
    }
    taken.clear();
    taken.swap(stream.body());
    const bool last = stream.ended();
    const absl::string_view relayed =
        strip_usage ? stripper.Filter(taken, last, usage.Feed(taken)) : absl::string_view(taken);
    const beast::error_code write_ec =
        co_await client_response.Send(client, relayed, last, options.client_write_timeout);
    // Scanned once sent, unless the bytes sent depended on it (as the HTTP/1.1 relay does).
    if (!strip_usage) {
      usage.Feed(taken);
    }
    created.Feed(taken);
    if (write_ec) {
      ClientGone(write_ec, usage);
      co_return result;
    }
    stream.Consumed(taken.size());
    if (last) {
      break;
    }
  }
  co_await EndRelay(client_response, usage, created, event_stream, upstream_failed, result.error);
  co_return result;
}

}  // namespace spillway
