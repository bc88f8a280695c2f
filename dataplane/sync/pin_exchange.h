// Pins between the agents of a region (docs/pinning.md): what one agent learns goes up the sync
// stream as PinUpdates, and what the control plane relays from the others is adopted here.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"
#include "dataplane/routing/object_pins.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// The wire form of a pin this agent learnt (or, with `owner` null, of an unpin).
v1::PinUpdate PinUpdateOf(absl::string_view digest, const PinOwner* owner);

struct PinAdoption {
  uint64_t adopted = 0;  // pins and unpins applied
  uint64_t refused = 0;  // malformed updates (digest size, oversized strings)
};

// Applies updates another agent sent. Every field comes from another process: a digest that is
// not ObjectPins::kDigestBytes long or an owner string past its bound is refused, and an
// expiry is taken as it is (ObjectPins drops pins already expired).
PinAdoption AdoptPinUpdates(const v1::PinUpdates& updates, ObjectPins& pins);

}  // namespace spillway
