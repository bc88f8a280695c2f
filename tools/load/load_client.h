// One request of a run over the agent's own upstream stack (UpstreamPool: TCP or verified TLS):
// a pooled HTTP/1.1 connection or, with --http2, a stream of a shared H2Session; answer timed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/upstream/upstream_pool.h"
#include "spillway/v1/routing_table.pb.h"
#include "tools/load/answer_body.h"
#include "tools/load/load_answer.h"
#include "tools/load/load_args.h"
#include "tools/load/load_stats.h"

namespace spillway::load {

// The TLS client context: peers verified against the system's roots, or only `ca_file` when
// given. Errors name the file.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(
    const std::string& ca_file);

class LoadClient {
 public:
  // `options` and `tls` must outlive the client; it runs on `executor`'s one thread.
  LoadClient(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
             const LoadOptions& options);

  // Connects once (TCP, and the TLS handshake for https): Unavailable, naming the target,
  // when it cannot be reached. Over HTTP/1.1 the connection serves the first request. With
  // --http2 a TLS handshake offers h2 by ALPN: a target that chooses http/1.1 is sent
  // HTTP/1.1, as the agent does.
  boost::asio::awaitable<absl::Status> Probe();

  // Sends `request` (a whole HTTP/1.1 request; over HTTP/2 made into a stream's headers) and
  // reads the answer. `start` is when the request left the scheduler: latencies count from
  // there, and the request must end by start + --timeout. `on_gap` gets a stream's gaps between
  // token events. Never retries an answer: only a pooled connection the server had closed while
  // idle, or a stream refused unprocessed, is replaced once, before any byte of an answer, as
  // curl and the agent do.
  boost::asio::awaitable<RequestResult> Send(std::string request, bool stream,
                                             Clock::time_point start, SseTiming::GapSink on_gap);

  // What requests go over: "h2" with --http2 (unless the target's ALPN chose HTTP/1.1), else
  // "http/1.1".
  absl::string_view protocol() const;

 private:
  struct Attempt;
  boost::asio::awaitable<RequestResult> SendHttp1(std::string request, Clock::time_point start,
                                                  SseTiming::GapSink on_gap);
  boost::asio::awaitable<void> Exchange(Attempt& attempt);
  // load_client_h2.cc. nullopt: the target turned out to speak HTTP/1.1 only (ALPN), and the
  // request has not been sent.
  boost::asio::awaitable<std::optional<RequestResult>> SendH2(const std::string& request,
                                                              Clock::time_point start,
                                                              LoadAnswer& answer);

  const LoadOptions& options_;
  v1::Backend config_;  // only its endpoint: the key of the pool's connections and sessions
  SnapshotBackend backend_;
  UpstreamPool pool_;
};

}  // namespace spillway::load
