// PortHold: keeps a port of ours from every other test while none of our processes listens
// on it (a killed control plane, agent or mock awaiting its restart, or gone for good).
#pragma once

#include "absl/status/statusor.h"

namespace spillway::test {

// Keeps a port of ours from every other process while nothing of ours listens on it: a socket
// bound to 127.0.0.1:port that never listens, so connections are refused, bind(0) elsewhere
// never picks the port, and our own restarted process (which sets SO_REUSEADDR) can bind it.
// Without it, under ctest -j2 another test could be handed a killed control plane's port, and
// since gRPC and the agent both set SO_REUSEPORT, the restarted one would share it silently.
class PortHold {
 public:
  PortHold() = default;
  PortHold(PortHold&& other) noexcept;
  PortHold& operator=(PortHold&& other) noexcept;
  ~PortHold();

  // Binds `port` with SO_REUSEADDR and SO_REUSEPORT: possible while our own process still
  // listens there (both options set by it too), so the port is never free in between.
  static absl::StatusOr<PortHold> WhileOurProcessListens(int port);
  // Binds `port` with SO_REUSEADDR only: fails if anyone else listens there or holds it.
  static absl::StatusOr<PortHold> IfFree(int port);

  bool held() const { return fd_ >= 0; }
  void Release();

 private:
  static absl::StatusOr<PortHold> Bind(int port, bool reuse_port);
  int fd_ = -1;
};

}  // namespace spillway::test
