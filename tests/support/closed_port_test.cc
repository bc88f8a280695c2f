// ClosedPort refuses connections while it lives.
#include "tests/support/closed_port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace spillway::test {
namespace {

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  const int error = rc == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

TEST(ClosedPort, RefusesConnections) {
  ClosedPort closed;
  ASSERT_GT(closed.port(), 0);
  EXPECT_EQ(Connect(closed.port()), ECONNREFUSED);
  EXPECT_EQ(closed.url(), "http://127.0.0.1:" + std::to_string(closed.port()));
}

TEST(ClosedPort, EachIsADifferentPort) {
  ClosedPort a;
  ClosedPort b;
  EXPECT_NE(a.port(), b.port());
}

}  // namespace
}  // namespace spillway::test
