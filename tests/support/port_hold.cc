// See port_hold.h.
#include "tests/support/port_hold.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace spillway::test {

PortHold::PortHold(PortHold&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

PortHold& PortHold::operator=(PortHold&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

PortHold::~PortHold() { Release(); }

void PortHold::Release() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

absl::StatusOr<PortHold> PortHold::WhileOurProcessListens(int port) { return Bind(port, true); }

absl::StatusOr<PortHold> PortHold::IfFree(int port) { return Bind(port, false); }

absl::StatusOr<PortHold> PortHold::Bind(int port, bool reuse_port) {
  PortHold hold;
  hold.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (hold.fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  const int one = 1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::setsockopt(hold.fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (reuse_port && ::setsockopt(hold.fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
      ::bind(hold.fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot hold 127.0.0.1:", port, ": ", std::strerror(errno)));
  }
  return hold;
}

}  // namespace spillway::test
