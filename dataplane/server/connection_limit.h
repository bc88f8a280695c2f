// The default for --max-connections: how many clients the descriptor limit can carry without
// the agent running out of sockets for its backends.
#pragma once

#include <algorithm>
#include <cstdint>

namespace spillway {

// Descriptors kept back for the agent's own files, listeners, gRPC and pooled backend
// connections.
inline constexpr int64_t kReservedDescriptors = 256;

// Over HTTP/1.1 a client in flight holds two sockets: its own and one to the backend. Over
// HTTP/2 (--upstream-http2) the backend streams share a few connections per backend, so a
// client holds one; uploads and Realtime still take a backend socket each, and if those ever
// exhaust the limit the backend connect fails with a 502 and accept pauses on EMFILE.
inline int64_t DefaultMaxConnections(uint64_t descriptors, bool upstream_http2) {
  const int64_t usable =
      static_cast<int64_t>(std::min<uint64_t>(descriptors, uint64_t{1} << 24)) -
      kReservedDescriptors;
  return std::max<int64_t>(64, upstream_http2 ? usable : usable / 2);
}

}  // namespace spillway
