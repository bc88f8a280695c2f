// The response the client gets for a backend's answer, whichever protocol that came over: the
// head (the backend's headers less hop-by-hop ones and those the agent replaces, plus
// x-spillway-* and the tenant's quota) and the body's framing, written as it arrives.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "dataplane/http/rate_limit_headers.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;

// Connection-specific headers: never forwarded (and forbidden in HTTP/2).
bool IsHopByHop(beast::http::field name);
bool IsRetryableStatus(unsigned status);
// A backend's wait longer than this is not believed: a cooling-down backend comes back to be
// tried (and can answer 429 again) instead of leaving the fleet for days on one header.
inline constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::minutes(10);
// retry-after-ms, else retry-after in seconds or as an HTTP-date (Azure sends both numbers on
// 429); zero when absent or unreadable, at most kMaxRetryAfter.
std::chrono::milliseconds RetryAfter(absl::string_view retry_after_ms,
                                     absl::string_view retry_after);
bool IsEventStreamType(absl::string_view content_type);
// Backend headers the agent sets itself, so drops from the backend's answer: x-spillway-*, and
// x-ratelimit-* when `rate_limit` is active (the tenant's quota replaces the backend's figures).
bool AgentSetsHeader(absl::string_view name, const RateLimitHeaders& rate_limit);

class ClientResponse {
 public:
  // `rate_limit` (must outlive this) replaces the backend's x-ratelimit-* when active.
  ClientResponse(unsigned status, absl::string_view reason, const RateLimitHeaders& rate_limit);
  // A head begun elsewhere: the status line and the backend headers the client gets (as
  // RelayResponseParser writes them).
  ClientResponse(std::string head, const RateLimitHeaders& rate_limit)
      : rate_limit_(rate_limit), head_(std::move(head)) {}

  // A backend header, dropped when the agent sets its own of that name. Content-Length and
  // hop-by-hop headers are the caller's to leave out.
  void AddBackendHeader(absl::string_view name, absl::string_view value);
  // Ends the head: who answered, the tenant's quota, and the body's framing: the backend's
  // length when its bytes pass unchanged, else chunked; neither for a body-less answer. An
  // HTTP/1.0 client knows no chunked encoding: its body ends where the connection closes.
  void FinishHead(absl::string_view backend_id, int attempt_number, bool chunked,
                  std::optional<uint64_t> length, bool client_keep_alive, bool client_http10);

  // One write: the head if not yet sent, `body` framed, and the last chunk when `last`.
  asio::awaitable<beast::error_code> Send(beast::tcp_stream& client, absl::string_view body,
                                          bool last, std::chrono::milliseconds timeout);
  // Send in two steps, for a relay that writes once per read: SendNow writes what the socket
  // takes at once and says whether that was all (`*done`); if not, co_await SendRest while
  // `body` stays valid. A coroutine frame per write is ~300 instructions per event of a paced
  // stream (callgrind).
  // Takes the socket, not the stream: a relay keeps it at hand, and the stream object is a cache
  // line more to fetch per event among thousands of streams.
  beast::error_code SendNow(asio::ip::tcp::socket& client, absl::string_view body, bool last,
                            bool* done);
  asio::awaitable<beast::error_code> SendRest(beast::tcp_stream& client,
                                              std::chrono::milliseconds timeout);
  // The backend failed mid-stream: bytes may already be out, so no retry; an SSE stream ends
  // with an error event the SDKs surface, and a properly closed chunked body.
  asio::awaitable<void> EndWithErrorEvent(beast::tcp_stream& client,
                                          std::chrono::milliseconds timeout);

  bool chunked() const { return chunked_; }
  // The body's end is the connection's (an HTTP/1.0 client and a body of unknown length).
  bool closes_connection() const { return closes_connection_; }

 private:
  // The head went out whole: it need not be kept.
  void HeadSent();

  const RateLimitHeaders& rate_limit_;
  std::string head_;
  std::string size_line_;
  bool chunked_ = false;
  bool closes_connection_ = false;
  bool head_sent_ = false;
  // What SendNow could not write at once: the pieces and how much of them went.
  std::array<asio::const_buffer, 5> pending_;
  std::size_t pending_written_ = 0;
};

}  // namespace spillway
