// See client_response.h.
#include "dataplane/http/client_response.h"

#include <array>
#include <cmath>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/socket_write.h"

namespace spillway {
namespace {

namespace http = beast::http;
using std::chrono::milliseconds;

}  // namespace

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

bool IsRetryableStatus(unsigned status) {
  return status == 408 || status == 500 || status == 502 || status == 503 || status == 504;
}

milliseconds RetryAfter(absl::string_view retry_after_ms, absl::string_view retry_after) {
  double ms = 0;
  if (absl::SimpleAtod(retry_after_ms, &ms) && ms > 0) {  // NaN is not > 0
    return ms >= static_cast<double>(kMaxRetryAfter.count())
               ? kMaxRetryAfter
               : milliseconds(std::llround(ms + 0.499));
  }
  retry_after = absl::StripAsciiWhitespace(retry_after);
  if (!retry_after.empty() && absl::c_all_of(retry_after, absl::ascii_isdigit)) {
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(retry_after, &seconds) || seconds >= kMaxRetryAfter.count() / 1000) {
      return kMaxRetryAfter;  // digits too many for an int64_t are a long wait too
    }
    return milliseconds(seconds * 1000);
  }
  // RFC 9110's other form: an HTTP-date (IMF-fixdate), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  absl::Time when;
  if (!retry_after.empty() && absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", retry_after,
                                              absl::UTCTimeZone(), &when, nullptr)) {
    const absl::Duration wait = absl::Ceil(when - absl::Now(), absl::Milliseconds(1));
    if (wait <= absl::ZeroDuration()) {
      return milliseconds(0);
    }
    return std::min(kMaxRetryAfter, absl::ToChronoMilliseconds(wait));
  }
  return milliseconds(0);
}

bool IsEventStreamType(absl::string_view content_type) {
  return absl::StartsWithIgnoreCase(content_type, "text/event-stream");
}

ClientResponse::ClientResponse(unsigned status, absl::string_view reason,
                               const RateLimitHeaders& rate_limit)
    : rate_limit_(rate_limit) {
  head_.reserve(1024);
  AppendStatusLine(head_, status, reason);
}

bool AgentSetsHeader(absl::string_view name, const RateLimitHeaders& rate_limit) {
  return name.size() > 2 && name[1] == '-' && (name[0] == 'x' || name[0] == 'X') &&
         (rate_limit.Replaces(name) || absl::StartsWithIgnoreCase(name, "x-spillway-"));
}

void ClientResponse::AddBackendHeader(absl::string_view name, absl::string_view value) {
  if (!AgentSetsHeader(name, rate_limit_)) {
    AppendHeaderLine(head_, name, value);
  }
}

void ClientResponse::FinishHead(absl::string_view backend_id, int attempt_number, bool chunked,
                                std::optional<uint64_t> length, bool client_keep_alive,
                                bool client_http10) {
  chunked_ = chunked && !client_http10;
  closes_connection_ = chunked && client_http10;
  AppendHeaderLine(head_, "x-spillway-backend", backend_id);
  AppendHeaderLine(head_, "x-spillway-attempts", static_cast<uint64_t>(attempt_number));
  rate_limit_.AppendTo(head_);
  if (chunked_) {
    AppendHeaderLine(head_, "Transfer-Encoding", "chunked");
  } else if (length.has_value() && !closes_connection_) {
    AppendHeaderLine(head_, "Content-Length", *length);
  }
  if (!client_keep_alive || closes_connection_) {
    AppendHeaderLine(head_, "Connection", "close");
  } else if (client_http10) {
    AppendHeaderLine(head_, "Connection", "keep-alive");
  }
  head_ += "\r\n";
}

beast::error_code ClientResponse::SendNow(asio::ip::tcp::socket& client, absl::string_view body,
                                          bool last, bool* done) {
  pending_ = {};  // unused entries stay empty
  pending_written_ = 0;
  *done = true;
  if (!head_sent_) {
    pending_[0] = asio::buffer(head_);
  }
  if (!body.empty()) {
    if (chunked_) {
      WriteChunkSizeLine(body.size(), size_line_);
      pending_[1] = asio::buffer(size_line_);
      pending_[3] = asio::buffer(kCrlf.data(), kCrlf.size());
    }
    pending_[2] = asio::buffer(body.data(), body.size());
  }
  if (last && chunked_) {
    pending_[4] = asio::buffer(kLastChunk.data(), kLastChunk.size());
  }
  const std::size_t size = asio::buffer_size(pending_);
  if (size == 0) {
    return {};
  }
  if (beast::error_code ec = WriteNow(client, pending_, pending_written_)) {
    return ec;
  }
  *done = pending_written_ == size;
  if (*done) {
    HeadSent();
  }
  return {};
}

asio::awaitable<beast::error_code> ClientResponse::SendRest(beast::tcp_stream& client,
                                                            milliseconds timeout) {
  const beast::error_code ec = co_await WriteRest(client, pending_, pending_written_, timeout);
  if (!ec) {
    HeadSent();
  }
  co_return ec;
}

void ClientResponse::HeadSent() {
  if (!head_sent_) {
    head_sent_ = true;
    std::string().swap(head_);  // a long stream need not keep it: 10k streams, 10 MB
  }
}

asio::awaitable<beast::error_code> ClientResponse::Send(beast::tcp_stream& client,
                                                        absl::string_view body, bool last,
                                                        milliseconds timeout) {
  bool done = false;
  const beast::error_code ec = SendNow(client.socket(), body, last, &done);
  if (ec || done) {
    co_return ec;
  }
  co_return co_await SendRest(client, timeout);
}

asio::awaitable<void> ClientResponse::EndWithErrorEvent(beast::tcp_stream& client,
                                                        milliseconds timeout) {
  if (!chunked_ && !closes_connection_) {
    co_return;  // a length was promised: a short body tells the client
  }
  constexpr absl::string_view kEvent =
      "event: error\ndata: {\"error\":{\"code\":\"upstream_error\",\"message\":\"The "
      "backend stopped sending before the response was complete.\"}}\n\n";
  co_await Send(client, kEvent, /*last=*/true, timeout);
}

}  // namespace spillway
