// One try of one backend for a request: send it, then either relay the answer to the client or
// say why the next candidate should be tried. Over HTTP/1.1 (upstream_attempt_http1.cc) or
// HTTP/2 (upstream_attempt_h2.cc); Proxy::Forward picks the backends and the protocol.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <string>

#include "dataplane/http/upstream_request.h"
#include "dataplane/proxy/proxy.h"

namespace spillway {

class ClientResponse;
class CreatedObjectScanner;
class H2Session;
class RelayResponseParser;
class UsageScanner;

// Another candidate is tried only when this backend cannot have started work on the request
// (docs/choices.md, "Retries"): a request a backend had may be billed, and a reasoning model
// may be minutes into it.
enum class AttemptKind {
  kRelayed,     // the response (or part of it) went to the client: the request is over
  kThrottled,   // 429: try the next candidate
  kNotHere,     // a probe's 404 (or 400): the object is elsewhere, ask the next candidate
  kFailed,      // not sent whole, or 503 with retry-after: try the next candidate
  kTimedOut,    // sent, no first byte in time: the client gets 504, no retry
  kBroken,      // sent, then the connection failed before an answer: 502, no retry
  kStale,       // the connection was dead before any byte: retry on a fresh one
  kClientGone,  // the client left while the backend worked: nothing is answered
};

struct AttemptResult {
  AttemptKind kind = AttemptKind::kFailed;
  unsigned status = 0;
  std::chrono::milliseconds retry_after{0};
  std::string error;
};

// nginx's status for a client that closed its connection before the answer: logged, never sent.
constexpr unsigned kClientClosedRequest = 499;

// 429, and 503 with retry-after(-ms): the backend refused the request without working on it,
// so another candidate may have it. Other errors (500, 502, 504, 408, a bare 503) go to the
// client as the backend sent them.
bool RefusedUnprocessed(unsigned status, bool has_retry_after);

// The route's first-byte timeout, else the agent's.
std::chrono::milliseconds FirstByteTimeout(const ProxyOptions& options, const SnapshotRoute& route);

// Client headers that go upstream as they are: not hop-by-hop ones, not the client's own
// credentials (the backend gets its own), not what the agent sets itself.
bool ForwardedUpstream(const RequestFields::value_type& field);
// The HTTP/1.1 head sent upstream, into `head`: the request line, the client's forwarded
// headers, then the agent's own (Host, the backend's credential, the body's framing).
void WriteUpstreamHead(const UpstreamRequest& own, const RequestFields& client, std::string& head);

struct Attempt {
  const ProxyOptions& options;
  beast::tcp_stream& client;
  const ProxyRequest& request;
  const SnapshotBackend& backend;
  UpstreamRequest& upstream_request;  // only what the agent sets
  int attempt_number;
  SteadyTime deadline;
  ProxyOutcome* outcome;
  bool* release_connection;  // the HTTP/1.1 connection may go back to the pool
  // The agent added stream_options.include_usage: strip what it adds from the stream.
  bool strip_stream_usage = false;
  // A probe for an object's owner with more candidates to ask (or a reason not to trust a
  // "not found"): a 404 or 400 is not relayed but tried elsewhere.
  bool probe_continues = false;

  asio::awaitable<AttemptResult> OverHttp1(UpstreamConnection& connection);
  asio::awaitable<AttemptResult> OverH2(H2Session& session);

 private:
  // No first byte after this long: the client gets 504.
  SteadyClock::duration FirstByteBudget() const;
  // The client left while the backend worked on its request.
  void OnClientGone(AttemptResult& result) const;
  // The answer is going to the client: no further attempt.
  void BeginRelay(AttemptResult& result);
  // request.upload could not be sent whole: the client's fault, or the backend's.
  AttemptResult UploadFailed(const beast::error_code& ec);
  // The client went away mid-answer: the backend's answer has nowhere to go.
  void ClientGone(const beast::error_code& ec, const UsageScanner& usage);
  // The answer ended: whole, or cut by the backend (`upstream_failed`, why in `error`), which
  // an SSE stream tells the client with an error event. (No ?: at the call: GCC 12
  // miscompiles it inside a co_await expression.)
  asio::awaitable<void> EndRelay(ClientResponse& response, const UsageScanner& usage,
                                 const CreatedObjectScanner& created, bool event_stream,
                                 bool upstream_failed, std::string error);
  // A pinned request relays its owner's refusal (429, 503 with retry-after): no other backend
  // has the object.
  bool TriesAnotherOn(unsigned status, bool has_retry_after) const {
    return request.pinned == nullptr && request.upload == nullptr &&
           (RefusedUnprocessed(status, has_retry_after) || NotHere(status));
  }
  bool NotHere(unsigned status) const {
    return probe_continues && (status == 404 || status == 400);
  }
  // How a candidate that TriesAnotherOn `status` refused the request.
  AttemptKind RefusalKind(unsigned status) const {
    if (NotHere(status)) {
      return AttemptKind::kNotHere;
    }
    return status == 429 ? AttemptKind::kThrottled : AttemptKind::kFailed;
  }
  template <class Stream>
  asio::awaitable<AttemptResult> RunHttp1(Stream& upstream, UpstreamConnection& connection);
  template <class Stream>
  asio::awaitable<AttemptResult> RelayHttp1(Stream& upstream, beast::tcp_stream& upstream_tcp,
                                            beast::flat_buffer& buffer,
                                            RelayResponseParser& parser);
};

}  // namespace spillway
