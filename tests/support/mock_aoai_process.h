// spillway-mock-aoai started for a test: the process on a free port of 127.0.0.1, killed when
// the object goes away.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/child_process.h"

namespace spillway::test {

class MockAoaiProcess {
 public:
  // Runs the mock with `--listen 127.0.0.1:0` and `args`, and waits for its port.
  static absl::StatusOr<std::unique_ptr<MockAoaiProcess>> Start(
      const std::vector<std::string>& args = {}, absl::Duration timeout = absl::Seconds(10));

  int port() const { return port_; }
  // "127.0.0.1:<port>"
  std::string address() const;
  ChildProcess& process() { return *process_; }

 private:
  MockAoaiProcess(std::unique_ptr<ChildProcess> process, int port)
      : process_(std::move(process)), port_(port) {}

  std::unique_ptr<ChildProcess> process_;
  int port_;
};

}  // namespace spillway::test
