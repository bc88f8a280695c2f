// TCP_INQ reads for DrainedReadBuffer (see drained_read.h).
#include "dataplane/http/drained_read.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace spillway {

bool EnableDrainReports(int fd) {
  const int on = 1;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, sizeof(on)) == 0;
}

bool DeferReadAcks(int fd) {
  const int off = 0;
  return ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof(off)) == 0;
}

long ReceiveNotingDrain(int fd, void* data, std::size_t size, int flags, bool* drained) {
  iovec iov{data, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t bytes = ::recvmsg(fd, &message, flags);
  if (bytes < 0) {
    return -errno;
  }
  *drained = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
      int left = 0;
      std::memcpy(&left, CMSG_DATA(c), sizeof(left));
      *drained = left == 0;
    }
  }
  return bytes;
}

}  // namespace spillway
