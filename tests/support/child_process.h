// A child process for integration tests: own process group, output captured and echoed to the
// test's stderr with its name, always killed and reaped even when the test fails half-way.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace spillway::test {

struct ChildProcessOptions {
  std::string name;              // prefix of echoed lines; default: the binary's basename
  bool echo = true;              // copy each output line to stderr
  std::vector<std::string> env;  // extra KEY=VALUE entries on top of this process's env
};

class ChildProcess {
 public:
  // Runs `binary` with `args` (argv[1..]); stdout and stderr both go to Output(). The child
  // gets SIGKILL if the calling thread dies first (PR_SET_PDEATHSIG), so start children from
  // the test's own thread, not from a short-lived helper thread.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::string& binary,
                                                             const std::vector<std::string>& args,
                                                             ChildProcessOptions options = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The port of the first output line containing "listening on <host>:<port>".
  absl::StatusOr<int> WaitForListenPort(absl::Duration timeout);
  // The first output line containing `substring`. DeadlineExceeded on timeout,
  // FailedPrecondition if the process closed its output first; both quote the output.
  absl::StatusOr<std::string> WaitForLine(absl::string_view substring, absl::Duration timeout);
  // Everything the process wrote so far.
  std::string Output() const;

  // Sends `signal` to the process itself (not its group).
  absl::Status Signal(int signal);
  // SIGKILL to the whole process group.
  void Kill();
  // Waits for the exit: the exit code, or 128 + signal number when killed by a signal.
  // DeadlineExceeded if still running after `timeout`. Output() is complete afterwards.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::Seconds(30));

 private:
  ChildProcess(pid_t pid, int output_fd, ChildProcessOptions options);
  void Drain();

  const pid_t pid_;
  const int output_fd_;
  int stop_pipe_[2] = {-1, -1};  // wakes the drain thread for shutdown
  const ChildProcessOptions options_;
  bool reaped_ = false;
  int exit_status_ = 0;

  mutable absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
  std::thread drainer_;
};

}  // namespace spillway::test
