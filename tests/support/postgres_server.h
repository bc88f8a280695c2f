// A throwaway PostgreSQL server for integration tests: its own data directory in a private temp
// dir, listening on a run-time loopback port, always stopped and removed when the object dies.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/child_process.h"
#include "tests/support/port_hold.h"
#include "tests/support/temp_dir.h"

namespace spillway::test {

class PostgresServer {
 public:
  // The directory holding initdb and postgres (Debian: /usr/lib/postgresql/15/bin); empty when
  // PostgreSQL is not installed, so tests can GTEST_SKIP.
  static std::string BinDir();

  // initdb into a fresh temp dir, then runs postgres in the foreground on 127.0.0.1 and a free
  // port, trusting the superuser "spillway". Returns once it accepts connections. Start it from
  // the test's own thread: the server dies with the thread that started it (PR_SET_PDEATHSIG).
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start();
  ~PostgresServer();  // immediate shutdown, then the data directory is removed
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }

  // Creates database `name` ([a-z0-9_]+, at most 63 characters) and returns its URL,
  // postgres://spillway@127.0.0.1:<port>/<name>.
  absl::StatusOr<std::string> CreateDatabase(const std::string& name);

  // Fast shutdown; returns once the server is gone. The port stays reserved for Restart() and
  // refuses connections meanwhile. A no-op when already stopped.
  absl::Status Stop();
  // Stops the server if it runs, then starts it again on the same port and data directory and
  // waits until it accepts connections.
  absl::Status Restart();

 private:
  PostgresServer(std::string bin_dir, ScopedTempDir dir, PortHold port_hold, int port)
      : bin_dir_(std::move(bin_dir)),
        dir_(std::move(dir)),
        port_hold_(std::move(port_hold)),
        port_(port) {}

  absl::Status RunServer();

  const std::string bin_dir_;
  // Declared first so it is removed last, after the server has exited.
  ScopedTempDir dir_;
  // Keeps the port from other tests across Stop()/Restart(); postgres binds it alongside.
  PortHold port_hold_;
  const int port_;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace spillway::test
