// One try of one backend for a request: send it, then either relay the answer to the client or
// say why the next candidate should be tried. Over HTTP/1.1 (upstream_attempt_http1.cc) or
// HTTP/2 (upstream_attempt_h2.cc); Proxy::Forward picks the backends and the protocol.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <string>

#include "dataplane/proxy/proxy.h"

namespace spillway {

class ClientResponse;
class H2Session;
class RelayResponseParser;
class UsageScanner;

enum class AttemptKind {
  kRelayed,    // the response (or part of it) went to the client: the request is over
  kThrottled,  // 429: try the next candidate
  kFailed,     // 5xx, 408, connection error: try the next candidate
  kTimedOut,   // no first byte in time
  kStale,      // the connection was dead before any byte: retry on a fresh one
};

struct AttemptResult {
  AttemptKind kind = AttemptKind::kFailed;
  unsigned status = 0;
  std::chrono::milliseconds retry_after{0};
  std::string error;
};

// Client headers that go upstream as they are: not hop-by-hop ones, not the client's own
// credentials (the backend gets its own), not what the agent sets itself.
bool ForwardedUpstream(const http::fields::value_type& field);

struct Attempt {
  const ProxyOptions& options;
  beast::tcp_stream& client;
  const ProxyRequest& request;
  const SnapshotBackend& backend;
  http::request<http::buffer_body>& upstream_request;  // only what the agent sets
  int attempt_number;
  SteadyTime deadline;
  ProxyOutcome* outcome;
  bool* release_connection;   // the HTTP/1.1 connection may go back to the pool
  std::string* request_head;  // reused across attempts
  // The agent added stream_options.include_usage: strip what it adds from the stream.
  bool strip_stream_usage = false;

  asio::awaitable<AttemptResult> OverHttp1(UpstreamConnection& connection);
  asio::awaitable<AttemptResult> OverH2(H2Session& session);

 private:
  // No first byte after this long: the next candidate.
  SteadyClock::duration FirstByteBudget() const;
  // The answer is going to the client: no further attempt.
  void BeginRelay(AttemptResult& result);
  // The client went away mid-answer: the backend's answer has nowhere to go.
  void ClientGone(const beast::error_code& ec, const UsageScanner& usage);
  // The answer ended: whole, or cut by the backend (`upstream_failed`, why in `error`), which
  // an SSE stream tells the client with an error event. (No ?: at the call: GCC 12
  // miscompiles it inside a co_await expression.)
  asio::awaitable<void> EndRelay(ClientResponse& response, const UsageScanner& usage,
                                 bool event_stream, bool upstream_failed, std::string error);
  template <class Stream>
  asio::awaitable<AttemptResult> RunHttp1(Stream& upstream, beast::tcp_stream& upstream_tcp,
                                          bool reused);
  template <class Stream>
  asio::awaitable<AttemptResult> RelayHttp1(Stream& upstream, beast::tcp_stream& upstream_tcp,
                                            beast::flat_buffer& buffer,
                                            RelayResponseParser& parser);
};

}  // namespace spillway
