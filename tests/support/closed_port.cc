// ClosedPort: a socket bound to an ephemeral port and left without listen(2), so connects get
// ECONNREFUSED and the port cannot be handed to anyone else meanwhile.
#include "tests/support/closed_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace spillway::test {

ClosedPort::ClosedPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("ClosedPort: cannot bind 127.0.0.1:0");
    std::abort();
  }
  port_ = ntohs(address.sin_port);
}

ClosedPort::~ClosedPort() { ::close(fd_); }

std::string ClosedPort::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string ClosedPort::url() const { return absl::StrCat("http://", address()); }

}  // namespace spillway::test
