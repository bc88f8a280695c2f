// A system call made directly, for the few on every event of a stream. glibc's wrappers of
// calls that are cancellation points (recvmsg, sendmsg) bracket each call, in a process with
// more than one thread, with two atomic updates of the thread's cancellation state; the agent
// never cancels a thread, and those were ~1% of a paced stream's CPU (perf).
#pragma once

#include <unistd.h>

#include <cerrno>

namespace spillway {

// The call's result, or -errno.
template <class... Args>
long SystemCall(long number, Args... args) {
  const long result = ::syscall(number, args...);
  return result < 0 ? -errno : result;
}

}  // namespace spillway
