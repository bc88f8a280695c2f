// See load_client_h2.h; also LoadClient::SendH2 (load_client.h), which picks the session. The
// stream's waits carry the request's deadline (H2Stream::Wait): no socket deadline is needed.
#include "tools/load/load_client_h2.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/load/load_client.h"

namespace spillway::load {

namespace asio = boost::asio;

namespace {

// Fields HTTP/1.1 gives the connection, which HTTP/2 forbids (RFC 9113 8.2.2).
bool IsConnectionSpecific(absl::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

// The answer's body, read as it arrives until it ends, fails or the deadline passes.
asio::awaitable<void> ReadBody(H2Stream& stream, Clock::time_point deadline, LoadAnswer& answer,
                               H2Exchange& exchange) {
  for (;;) {
    if (!stream.body().empty()) {
      const size_t taken = stream.body().size();
      const bool usable = answer.Take(exchange.head, stream.body(), Clock::now());
      stream.body().clear();
      stream.Consumed(taken);  // the backend may send as much again
      if (!usable) {
        exchange.error_kind = "event_too_large";
        co_return;
      }
    }
    if (stream.ended()) {
      co_return;
    }
    if (stream.failed()) {
      exchange.error_kind = H2ErrorKind(stream.error(), /*answered=*/true);
      co_return;
    }
    if (!co_await stream.Wait(deadline)) {
      exchange.error_kind = "timeout";
      co_return;
    }
  }
}

}  // namespace

void ToH2Request(absl::string_view request, bool tls, H2Request& out) {
  const size_t head_end = request.find("\r\n\r\n");
  const absl::string_view head = request.substr(0, head_end);
  out.body = head_end == absl::string_view::npos ? "" : request.substr(head_end + 4);
  out.names.clear();
  out.names.reserve(head.size());  // no reallocation below: the views into it stay valid
  out.headers.clear();
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  const std::vector<absl::string_view> start = absl::StrSplit(lines[0], ' ');
  out.headers.push_back({":method", start[0]});
  out.headers.push_back({":scheme", tls ? "https" : "http"});
  out.headers.push_back({":authority", ""});
  out.headers.push_back({":path", start.size() > 1 ? start[1] : "/"});
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    const size_t from = out.names.size();
    for (const char c : lines[i].substr(0, colon)) {
      out.names.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    }
    const absl::string_view name = absl::string_view(out.names).substr(from);
    const absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (name == "host") {
      out.headers[2].value = value;
    } else if (!IsConnectionSpecific(name)) {
      out.headers.push_back({name, value});
    }
  }
}

std::string H2ErrorKind(absl::string_view error, bool answered) {
  // The texts are dataplane/upstream's (h2_session.cc, upstream_pool.cc).
  if (absl::StrContains(error, " reset the HTTP/2 stream")) return "h2_reset";
  if (absl::StrContains(error, " refused the HTTP/2 stream")) return "h2_refused";
  if (absl::StartsWith(error, "cannot connect") || absl::StartsWith(error, "cannot resolve") ||
      absl::StartsWith(error, "TLS handshake")) {
    return "connect";
  }
  if (absl::StrContains(error, "protocol error")) return "bad_http";
  return answered ? "cut" : "closed_unanswered";
}

asio::awaitable<H2Exchange> ExchangeH2(H2Session& session, const asio::any_io_executor& executor,
                                       const H2Request& request, Clock::time_point deadline,
                                       LoadAnswer& answer) {
  H2Exchange exchange;
  H2Stream stream(executor);  // its destructor resets it if it has not ended
  if (!session.Open(stream, request.headers, request.body).ok()) {
    exchange.refused = true;  // full or going away: another session may take it
    exchange.error_kind = "h2_refused";
    co_return exchange;
  }
  const Clock::time_point opened_at = Clock::now();
  while (!stream.has_response() && !stream.failed()) {
    if (!co_await stream.Wait(deadline)) {
      // Nothing at all on the connection since then: new streams go to a new one.
      session.SuspectSilence(opened_at);
      exchange.error_kind = "timeout";
      co_return exchange;
    }
  }
  if (!stream.has_response()) {
    exchange.refused = stream.retryable();
    exchange.error_kind =
        exchange.refused ? "h2_refused" : H2ErrorKind(stream.error(), /*answered=*/false);
    co_return exchange;
  }
  exchange.head.status = stream.status();
  for (const auto& [name, value] : stream.headers()) {
    exchange.head.Field(name, value);
  }
  co_await ReadBody(stream, deadline, answer, exchange);
  co_return exchange;
}

asio::awaitable<std::optional<RequestResult>> LoadClient::SendH2(const std::string& request,
                                                                 Clock::time_point start,
                                                                 LoadAnswer& answer) {
  H2Request h2;
  ToH2Request(request, backend_.address.tls, h2);
  const Clock::time_point deadline = start + options_.timeout;
  H2Exchange exchange;
  // A stream refused unprocessed goes once more, on a session that accepts streams (after a
  // GOAWAY a new one), as the HTTP/1.1 path replaces a stale keep-alive connection once.
  for (int round = 0; round < 2; ++round) {
    std::shared_ptr<H2Session> session = pool_.AcquireH2(backend_);
    exchange = co_await ExchangeH2(*session, pool_.executor(), h2, deadline, answer);
    if (!exchange.refused) break;
    if (!pool_.UsesHttp2(backend_)) {
      co_return std::nullopt;  // the session found that ALPN chose HTTP/1.1
    }
  }
  co_return answer.Result(exchange.head, exchange.error_kind, start);
}

}  // namespace spillway::load
