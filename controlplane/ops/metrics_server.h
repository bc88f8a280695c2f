// spillway-cp's HTTP listener for Prometheus (--metrics-listen): GET /metrics and GET /healthz,
// nothing else, on a thread and io_context of its own so a scrape never waits on gRPC.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace spillway {

struct MetricsServerOptions {
  // Connections held at once; more wait in the listen backlog.
  int max_connections = 32;
  // Each read (a whole request head) and each write must finish within this.
  std::chrono::milliseconds io_timeout{10000};
};

class MetricsServer {
 public:
  // The /metrics body; called on the server's thread for every scrape.
  using Render = std::function<std::string()>;

  // Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free one) and starts serving.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              Render render,
                                                              MetricsServerOptions options = {});
  // Stops accepting, drops open connections and joins the thread.
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const std::string& host() const;
  int port() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway
