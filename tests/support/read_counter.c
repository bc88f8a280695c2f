// libspillway_read_counter.so: LD_PRELOAD it to count a process's socket reads and those that
// found the socket empty (EAGAIN), so a test can tell whether the agent waits for the event
// loop or tries a socket that cannot have data yet. The two totals go to
// $SPILLWAY_READ_COUNT_FILE after every counted read. Peeks (MSG_PEEK) are not counted: the
// agent's once-a-second check on waiting clients is one by design.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static atomic_uint_fast64_t g_reads;
static atomic_uint_fast64_t g_empty;
static int g_fd = -2;  // -2: not opened yet; -1: no file asked for

typedef ssize_t (*RecvFn)(int, void*, size_t, int);
typedef ssize_t (*RecvFromFn)(int, void*, size_t, int, struct sockaddr*, socklen_t*);
typedef ssize_t (*RecvMsgFn)(int, struct msghdr*, int);

static void Report(void) {
  if (g_fd == -2) {
    const char* path = getenv("SPILLWAY_READ_COUNT_FILE");
    g_fd = path == NULL ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (g_fd < 0) {
    return;
  }
  char line[64];
  // Fixed width, rewritten in place: a reader never sees a shorter line's leftovers.
  const int n =
      snprintf(line, sizeof(line), "%20llu %20llu\n", (unsigned long long)atomic_load(&g_reads),
               (unsigned long long)atomic_load(&g_empty));
  if (n > 0) {
    (void)!pwrite(g_fd, line, (size_t)n, 0);
  }
}

static ssize_t Counted(ssize_t result, int flags) {
  if ((flags & MSG_PEEK) == 0) {
    const int saved = errno;
    atomic_fetch_add(&g_reads, 1);
    if (result < 0 && (saved == EAGAIN || saved == EWOULDBLOCK)) {
      atomic_fetch_add(&g_empty, 1);
    }
    Report();
    errno = saved;
  }
  return result;
}

ssize_t recv(int fd, void* data, size_t size, int flags) {
  static RecvFn next;
  if (next == NULL) {
    next = (RecvFn)dlsym(RTLD_NEXT, "recv");
  }
  return Counted(next(fd, data, size, flags), flags);
}

ssize_t recvfrom(int fd, void* data, size_t size, int flags, struct sockaddr* from,
                 socklen_t* from_size) {
  static RecvFromFn next;
  if (next == NULL) {
    next = (RecvFromFn)dlsym(RTLD_NEXT, "recvfrom");
  }
  return Counted(next(fd, data, size, flags, from, from_size), flags);
}

ssize_t recvmsg(int fd, struct msghdr* message, int flags) {
  static RecvMsgFn next;
  if (next == NULL) {
    next = (RecvMsgFn)dlsym(RTLD_NEXT, "recvmsg");
  }
  return Counted(next(fd, message, flags), flags);
}
