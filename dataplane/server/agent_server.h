// The agent's listener: one io_context per thread, each with its own SO_REUSEPORT acceptor,
// connection pool and request handler, so threads share nothing on the request path.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/server/request_handler.h"

namespace spillway {

struct AgentServerOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  int threads = 1;
  std::string upstream_ca_file;  // empty: the system's trust store
  // --admin-listen: /healthz, /readyz, /status and /metrics (and nothing else) for anyone who
  // reaches this address; empty: none.
  std::string admin_listen_host;
  uint16_t admin_listen_port = 0;
  UpstreamPoolOptions upstream;
};

class AgentServer {
 public:
  // Binds the listening sockets (so the port is known and errors surface before start).
  static absl::StatusOr<std::unique_ptr<AgentServer>> Bind(AgentContext& context,
                                                           const AgentServerOptions& options);
  ~AgentServer();

  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }
  void Start();
  // Stops accepting; requests in flight go on until Stop.
  void StopAccepting();
  void Stop();
  void Join();

 private:
  struct Worker;
  AgentServer(AgentContext& context, const AgentServerOptions& options);

  AgentContext& context_;
  const AgentServerOptions options_;
  boost::asio::ssl::context tls_context_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace spillway
