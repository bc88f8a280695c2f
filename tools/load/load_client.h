// One request of a run, over the agent's own upstream stack: a pooled HTTP/1.1 connection
// (UpstreamPool: TCP or verified TLS), the request written, the answer read and timed. Never
// retries an answer; only a pooled connection the server had closed while idle is replaced
// once, before any byte of an answer, as curl and the agent do.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/upstream/upstream_pool.h"
#include "spillway/v1/routing_table.pb.h"
#include "tools/load/answer_body.h"
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
  // when it cannot be reached. The connection serves the first request.
  boost::asio::awaitable<absl::Status> Probe();

  // Sends `request` (a whole HTTP/1.1 request) and reads the answer. `start` is when the
  // request left the scheduler: latencies count from there, and the request must end by
  // start + --timeout. `on_gap` gets a stream's gaps between token events.
  boost::asio::awaitable<RequestResult> Send(std::string request, bool stream,
                                             Clock::time_point start, SseTiming::GapSink on_gap);

 private:
  struct Attempt;
  boost::asio::awaitable<void> Exchange(Attempt& attempt);

  const LoadOptions& options_;
  v1::Backend config_;  // only its endpoint: the key of the pool's idle connections
  SnapshotBackend backend_;
  UpstreamPool pool_;
};

}  // namespace spillway::load
