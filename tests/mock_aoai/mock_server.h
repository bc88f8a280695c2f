// spillway-mock-aoai's server: binds the listen address (one SO_REUSEPORT acceptor and
// io_context per thread), serves HTTP or HTTPS until SIGINT/SIGTERM or Stop().
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "tests/mock_aoai/config.h"

namespace spillway::mock {

class MockServer {
 public:
  // Binds now, so the port is known (and a bad address or certificate reported) before Run.
  static absl::StatusOr<std::unique_ptr<MockServer>> Create(MockConfig config);
  ~MockServer();

  int port() const;
  // Serves on this thread and config.threads - 1 others; returns once stopped. `on_started`
  // runs once every thread is serving (to announce readiness).
  void Run(const std::function<void()>& on_started = [] {});
  // Thread-safe; stops accepting and ends every connection.
  void Stop();

 private:
  struct Impl;
  explicit MockServer(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace spillway::mock
