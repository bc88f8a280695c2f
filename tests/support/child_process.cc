// See child_process.h. Only async-signal-safe calls happen between fork and exec: the test
// process has other threads (output drainers) whose locks the child must not touch.
#include "tests/support/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace spillway::test {
namespace {

std::string Tail(const std::string& output) {
  constexpr size_t kMax = 4000;
  return output.size() <= kMax ? output : "..." + output.substr(output.size() - kMax);
}

void CloseFd(int fd) {
  if (fd >= 0) {
    close(fd);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, ChildProcessOptions options) {
  if (options.name.empty()) {
    const size_t slash = binary.rfind('/');
    options.name = slash == std::string::npos ? binary : binary.substr(slash + 1);
  }
  // Everything the child needs is built before fork.
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = options.env;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    envp.push_back(*e);
  }
  for (std::string& entry : env_storage) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);

  int output[2];
  int exec_status[2];  // closed by a successful exec; carries errno otherwise
  if (pipe2(output, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  if (pipe2(exec_status, O_CLOEXEC) != 0) {
    CloseFd(output[0]);
    CloseFd(output[1]);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int error = errno;
    for (int fd : {output[0], output[1], exec_status[0], exec_status[1]}) CloseFd(fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(error)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    // Safety net: if the test process dies without running destructors, so does the child.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    struct sigaction action = {};
    action.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(output[1], STDOUT_FILENO);
    dup2(output[1], STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
    }
    execve(argv[0], argv.data(), envp.data());
    const int error = errno;
    ssize_t ignored = write(exec_status[1], &error, sizeof(error));
    (void)ignored;
    _exit(127);
  }
  setpgid(pid, pid);  // also from here, so the group exists before Start returns
  CloseFd(output[1]);
  CloseFd(exec_status[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_status[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  CloseFd(exec_status[0]);
  if (n > 0) {
    CloseFd(output[0]);
    waitpid(pid, nullptr, 0);
    return absl::NotFoundError(
        absl::StrCat("cannot run ", binary, ": ", std::strerror(exec_errno)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, output[0], std::move(options)));
}

ChildProcess::ChildProcess(pid_t pid, int output_fd, ChildProcessOptions options)
    : pid_(pid), output_fd_(output_fd), options_(std::move(options)) {
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    stop_pipe_[0] = stop_pipe_[1] = -1;
  }
  drainer_ = std::thread([this] { Drain(); });
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (stop_pipe_[1] >= 0) {
    const char byte = 0;
    ssize_t ignored = write(stop_pipe_[1], &byte, 1);
    (void)ignored;
  }
  drainer_.join();
  CloseFd(output_fd_);
  CloseFd(stop_pipe_[0]);
  CloseFd(stop_pipe_[1]);
}

void ChildProcess::Drain() {
  std::string partial;  // an unfinished line, for echoing
  char buffer[4096];
  for (;;) {
    pollfd fds[2] = {{output_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    const int ready = poll(fds, stop_pipe_[0] >= 0 ? 2 : 1, -1);
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    // Stop only once the output is drained or a grandchild keeps the pipe open forever.
    const bool stop = ready > 0 && (fds[1].revents & POLLIN) != 0;
    ssize_t n = 0;
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      n = read(output_fd_, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) {
        continue;
      }
    } else if (!stop) {
      continue;
    }
    if (n > 0) {
      if (options_.echo) {
        partial.append(buffer, n);
        size_t newline;
        while ((newline = partial.find('\n')) != std::string::npos) {
          std::fprintf(stderr, "[%s] %.*s\n", options_.name.c_str(), static_cast<int>(newline),
                       partial.data());
          partial.erase(0, newline + 1);
        }
      }
      absl::MutexLock lock(&mu_);
      output_.append(buffer, n);
      continue;
    }
    if (options_.echo && !partial.empty()) {
      std::fprintf(stderr, "[%s] %s\n", options_.name.c_str(), partial.c_str());
    }
    absl::MutexLock lock(&mu_);
    eof_ = true;
    return;
  }
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(absl::string_view substring,
                                                      absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  size_t found = std::string::npos;
  // A match counts once its line is complete (or the output ended), so callers never see
  // half a line.
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    found = output_.find(substring.data(), 0, substring.size());
    if (found != std::string::npos && (output_.find('\n', found) != std::string::npos || eof_)) {
      return true;
    }
    found = std::string::npos;
    return eof_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (found == std::string::npos) {
    if (eof_) {
      return absl::FailedPreconditionError(absl::StrCat(options_.name,
                                                        " closed its output before printing '",
                                                        substring, "'; output:\n", Tail(output_)));
    }
    return absl::DeadlineExceededError(absl::StrCat(options_.name, " did not print '", substring,
                                                    "' within ", absl::FormatDuration(timeout),
                                                    "; output:\n", Tail(output_)));
  }
  const size_t start = output_.rfind('\n', found);
  const size_t begin = start == std::string::npos ? 0 : start + 1;
  const size_t end = std::min(output_.find('\n', found), output_.size());
  return output_.substr(begin, end - begin);
}

absl::StatusOr<int> ChildProcess::WaitForListenPort(absl::Duration timeout) {
  constexpr absl::string_view kMarker = "listening on ";
  absl::StatusOr<std::string> line = WaitForLine(kMarker, timeout);
  if (!line.ok()) {
    return line.status();
  }
  absl::string_view address = *line;
  address.remove_prefix(address.find(kMarker) + kMarker.size());
  address = address.substr(0, address.find_first_of(" \t\r"));
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port <= 0 || port > 65535) {
    return absl::InternalError(absl::StrCat("no port in '", *line, "'"));
  }
  return port;
}

std::string ChildProcess::Output() const {
  absl::MutexLock lock(&mu_);
  return output_;
}

absl::Status ChildProcess::Signal(int signal) {
  if (reaped_) {
    return absl::FailedPreconditionError(absl::StrCat(options_.name, " already exited"));
  }
  if (kill(pid_, signal) != 0) {
    return absl::InternalError(absl::StrCat("kill: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void ChildProcess::Kill() {
  if (!reaped_) {
    kill(-pid_, SIGKILL);
  }
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!reaped_) {
    int status = 0;
    const pid_t result = waitpid(pid_, &status, WNOHANG);
    if (result == pid_) {
      reaped_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                       : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
      break;
    }
    if (result < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(options_.name, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  // Let the drainer catch up so Output() holds everything the process wrote.
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&eof_), absl::Seconds(2));
  return exit_status_;
}

}  // namespace spillway::test
