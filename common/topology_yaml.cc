// The topology is just the generic proto<->YAML mapping applied to v1::Topology.
#include "common/topology_yaml.h"

#include "common/file_io.h"
#include "common/proto_json.h"
#include "common/proto_yaml.h"

namespace spillway {

absl::StatusOr<v1::Topology> ParseTopologyYaml(absl::string_view text,
                                               absl::string_view source_name) {
  v1::Topology topology;
  absl::Status status = ParseYamlInto(text, source_name, &topology);
  if (!status.ok()) {
    return status;
  }
  return topology;
}

absl::StatusOr<v1::Topology> LoadTopologyFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return text.status();
  }
  return ParseTopologyYaml(*text, path);
}

std::string TopologyToYaml(const v1::Topology& topology) { return MessageToYaml(topology); }

std::string TopologyToJson(const v1::Topology& topology) { return MessageToJson(topology); }

}  // namespace spillway
