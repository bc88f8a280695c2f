// Keep-alive connections to backends, one pool per I/O thread (so no locks): plain TCP or
// TLS with SNI and certificate verification, connect and handshake bounded by timeouts.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "dataplane/routing/routing_snapshot.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;

class UpstreamConnection {
 public:
  UpstreamConnection(const asio::any_io_executor& executor, asio::ssl::context* tls_context);

  bool is_tls() const { return tls_.has_value(); }
  beast::tcp_stream& tcp() { return is_tls() ? beast::get_lowest_layer(*tls_) : *tcp_; }
  beast::ssl_stream<beast::tcp_stream>& tls() { return *tls_; }

  // An HTTP/1.1 exchange's buffers, kept with the connection so that the next request on it
  // allocates neither: the request head as written, and the buffer the answer is read into
  // (empty whenever the connection is idle: only an exchange that ended at the answer's last
  // byte returns it to the pool).
  std::string& request_head() { return request_head_; }
  beast::flat_buffer& read_buffer() { return read_buffer_; }
  // The size of the relay's chunk (Attempt::RelayHttp1), which the answer's body bytes, parsed
  // out of read_buffer(), go through to the client. A burst of events (a fast backend, a
  // stream's end, a client that fell behind) leaves in one write per kRelayChunk: at nginx's
  // 4 KB proxy_buffer_size a 13 KB burst took 4 reads and 4 writes, 10.3 system calls a stream
  // against 4.2 at 16 KB, and CPU per stream fell by a third (a system call and the wake-up it
  // causes cost ~1-2 us on this VM).
  static constexpr std::size_t kRelayChunk = 16 * 1024;
  // Frees a buffer an exchange grew past what an idle connection keeps (a long head, an error
  // body): kKeptHead of request head, kKeptReadBuffer of read buffer. The read buffer starts
  // at kRelayChunk, so that a burst is one read.
  void TrimBuffers();
  static constexpr std::size_t kKeptHead = 8 * 1024;
  static constexpr std::size_t kKeptReadBuffer = kRelayChunk;

  // Taken from the idle pool: a failure before any response byte may just mean the
  // backend closed it while idle, which is retried on a fresh connection.
  bool reused = false;
  bool negotiated_h2 = false;  // TLS ALPN chose h2

 private:
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  std::string request_head_;
  beast::flat_buffer read_buffer_;
};

using UpstreamConnectionPtr = std::unique_ptr<UpstreamConnection>;

struct UpstreamPoolOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::size_t max_idle_per_backend = 256;
  // Backends over HTTP/2: h2c with prior knowledge for http:// endpoints, ALPN for https://
  // ones (an endpoint that answers ALPN with http/1.1 is used over HTTP/1.1).
  bool http2 = false;
};

class H2Session;

class UpstreamPool {
 public:
  UpstreamPool(asio::any_io_executor executor, asio::ssl::context& tls_context,
               const UpstreamPoolOptions& options);

  // An idle connection to the backend's endpoint, or null when there is none (Connect makes
  // one). Not a coroutine: a frame would be an allocation per request.
  UpstreamConnectionPtr TakeIdle(const SnapshotBackend& backend);
  // A new connection to the backend's endpoint. Errors name the endpoint.
  asio::awaitable<absl::StatusOr<UpstreamConnectionPtr>> Connect(const SnapshotBackend& backend);
  // A new connection to any address (`origin`, scheme://host:port, names it in errors and
  // keys the resolver cache), e.g. a token endpoint. `offer_h2`: ALPN offers h2 on TLS (the
  // connection says whether it was chosen).
  asio::awaitable<absl::StatusOr<UpstreamConnectionPtr>> Connect(UpstreamAddress address,
                                                                 std::string origin,
                                                                 bool offer_h2 = false);
  // Returns a connection whose last exchange ended cleanly with keep-alive.
  void Release(const SnapshotBackend& backend, UpstreamConnectionPtr connection);

  // HTTP/2 (options.http2): whether requests to the backend go over HTTP/2, and a connection
  // to its endpoint with room for another stream (a new one when all are full).
  bool UsesHttp2(const SnapshotBackend& backend) const;
  std::shared_ptr<H2Session> AcquireH2(const SnapshotBackend& backend);
  void MarkHttp1Only(const std::string& endpoint) { http1_only_.insert(endpoint); }
  const asio::any_io_executor& executor() const { return executor_; }

 private:
  asio::any_io_executor executor_;
  asio::ssl::context& tls_context_;
  const UpstreamPoolOptions options_;
  asio::ip::tcp::resolver resolver_;
  // Keyed by endpoint (scheme://host:port): deployments on one instance share connections.
  absl::flat_hash_map<std::string, std::vector<UpstreamConnectionPtr>> idle_;
  absl::flat_hash_map<std::string, asio::ip::tcp::resolver::results_type> resolved_;
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<H2Session>>> h2_;
  absl::flat_hash_set<std::string> http1_only_;
};

}  // namespace spillway
