// See mock_aoai_process.h.
#include "tests/support/mock_aoai_process.h"

#include "absl/strings/str_cat.h"
#include "tests/support/binaries.h"

namespace spillway::test {

absl::StatusOr<std::unique_ptr<MockAoaiProcess>> MockAoaiProcess::Start(
    const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> argv = {"--listen", "127.0.0.1:0"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcessOptions options;
  options.name = "mock-aoai";
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Start(kMockAoaiBinary, argv, options);
  if (!process.ok()) {
    return process.status();
  }
  absl::StatusOr<int> port = (*process)->WaitForListenPort(timeout);
  if (!port.ok()) {
    return port.status();
  }
  return std::unique_ptr<MockAoaiProcess>(new MockAoaiProcess(*std::move(process), *port));
}

std::string MockAoaiProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

}  // namespace spillway::test
