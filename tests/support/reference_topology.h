// The reference topology of examples/, loaded once per test binary. A target that
// includes this defines SPILLWAY_REFERENCE_TOPOLOGY as the file's path.
#pragma once

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "common/topology_yaml.h"
#include "spillway/v1/topology.pb.h"

namespace spillway::test {

inline const v1::Topology& ReferenceTopology() {
  static const v1::Topology* const topology = [] {
    absl::StatusOr<v1::Topology> loaded = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return new v1::Topology(loaded.value_or(v1::Topology()));
  }();
  return *topology;
}

}  // namespace spillway::test
