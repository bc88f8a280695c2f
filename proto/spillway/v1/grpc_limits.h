// Limits both ends of Spillway's gRPC channels must agree on: spillway-cp's server, the
// agent's AgentSync channel and spillwayctl's Admin channel all use these.
#pragma once

namespace spillway::v1 {

// Routing tables and topologies grow with the estate; gRPC's default 4 MiB receive limit
// would refuse a large region's table. One value on both sides, so neither end sends what
// the other refuses.
inline constexpr int kMaxGrpcMessageBytes = 64 << 20;

}  // namespace spillway::v1
