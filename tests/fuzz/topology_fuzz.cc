// Fuzzes the topology loader an operator's YAML goes through: parse, validate, compile for a
// region. Any text gives a topology or errors naming what is wrong, never a crash.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "common/topology_compile.h"
#include "common/topology_validate.h"
#include "common/topology_yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<spillway::v1::Topology> topology = spillway::ParseTopologyYaml(text, "fuzz");
  if (!topology.ok()) {
    return 0;
  }
  if (!spillway::ValidateTopology(*topology).empty()) {
    return 0;
  }
  for (const auto& region : topology->regions()) {
    (void)spillway::CompileRoutingTable(*topology, region.name(), 1);
  }
  return 0;
}
