// The topology edits behind spillwayctl drain/undrain, and the rule that keeps drains across
// an apply: a drain is an operator's act during an incident or a drill, not part of the YAML
// a pipeline re-applies, so re-applying a file must not silently put a region back.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// When `desired` declares no drains, the drains of `current` whose target `desired` still
// has are carried over; drains `desired` declares replace them all.
void KeepDrains(const v1::Topology& current, v1::Topology& desired);

// Adds the drain (or replaces the one with the same scope and name), stamped `now`.
absl::Status AddDrain(const v1::DrainRequest& request, absl::Time now, v1::Topology& topology);

// Removes the drain of that scope and name; NotFound when there is none.
absl::Status RemoveDrain(v1::DrainScope scope, const std::string& name, v1::Topology& topology);

}  // namespace spillway
