// A local TCP port that refuses connections for as long as the object lives: bound, so no other
// test can take it, but never listening. Tests use it for "a backend that is down" instead of
// assuming that 127.0.0.1:1 or a killed process's port stays dead.
#pragma once

#include <string>

namespace spillway::test {

class ClosedPort {
 public:
  ClosedPort();  // binds 127.0.0.1:0; aborts the test binary if the kernel refuses
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  ~ClosedPort();

  int port() const { return port_; }
  std::string address() const;  // 127.0.0.1:PORT
  std::string url() const;      // http://127.0.0.1:PORT

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace spillway::test
