// The default connection cap follows what a client costs in descriptors.
#include "dataplane/server/connection_limit.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

TEST(DefaultMaxConnections, OverHttp11AClientCostsTwoDescriptors) {
  EXPECT_EQ(DefaultMaxConnections(20000, false), (20000 - kReservedDescriptors) / 2);
  EXPECT_EQ(DefaultMaxConnections(1048576, false), (1048576 - kReservedDescriptors) / 2);
}

// The benchmark's 10,000 streams over HTTP/2 upstreams fit under a hard limit of 20,000; half of
// it (9,872) kept about 900 of them waiting in the backlog.
TEST(DefaultMaxConnections, OverHttp2AClientCostsOneDescriptor) {
  EXPECT_EQ(DefaultMaxConnections(20000, true), 20000 - kReservedDescriptors);
  EXPECT_GE(DefaultMaxConnections(20000, true), 10000);
}

TEST(DefaultMaxConnections, NeverBelowAFloorNorAboveTheCeiling) {
  EXPECT_EQ(DefaultMaxConnections(0, false), 64);
  EXPECT_EQ(DefaultMaxConnections(300, true), 64);
  EXPECT_EQ(DefaultMaxConnections(UINT64_MAX, true), (int64_t{1} << 24) - kReservedDescriptors);
}

}  // namespace
}  // namespace spillway
