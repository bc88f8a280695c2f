// Loads the operators' topology YAML (examples/topology.yaml is the reference)
// into the spillway.v1.Topology proto, with file:line:column errors.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

absl::StatusOr<v1::Topology> ParseTopologyYaml(absl::string_view text,
                                               absl::string_view source_name);

// Reads and parses a file; a missing or unreadable file is an error naming the path.
absl::StatusOr<v1::Topology> LoadTopologyFile(const std::string& path);

// What `spillwayctl get` prints: both load back through ParseTopologyYaml unchanged.
std::string TopologyToYaml(const v1::Topology& topology);
std::string TopologyToJson(const v1::Topology& topology);

}  // namespace spillway
