// What a well-formed PinUpdate is (proto/spillway/v1/agent_sync.proto), checked by the control
// plane before it relays one and by each agent before it adopts one: neither trusts the sender.
#pragma once

#include <cstddef>

#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// The first 16 bytes of SHA-256(object id), as ObjectPins keys its pins.
inline constexpr std::size_t kPinDigestBytes = 16;
// Backend ids are "<instance>/<deployment>" and tenant names are operator-chosen: far shorter.
inline constexpr std::size_t kMaxPinOwnerStringBytes = 512;

// A digest of kPinDigestBytes, owner strings within their bound, and a backend unless it is
// a removal.
bool WellFormedPinUpdate(const v1::PinUpdate& update);

}  // namespace spillway
