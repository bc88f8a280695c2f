// See pin_exchange.h.
#include "dataplane/sync/pin_exchange.h"

#include <string>

#include "common/pin_update_rules.h"

namespace spillway {

static_assert(ObjectPins::kDigestBytes == kPinDigestBytes,
              "agents exchange pins by the digest ObjectPins keys them with");

v1::PinUpdate PinUpdateOf(absl::string_view digest, const PinOwner* owner) {
  v1::PinUpdate update;
  update.set_digest(std::string(digest));
  if (owner == nullptr) {
    update.set_removed(true);
    return update;
  }
  update.set_backend_id(owner->backend_id);
  update.set_tenant(owner->tenant);
  update.set_expires_unix_s(owner->expires_unix_s);
  return update;
}

PinAdoption AdoptPinUpdates(const v1::PinUpdates& updates, ObjectPins& pins) {
  PinAdoption result;
  for (const v1::PinUpdate& update : updates.updates()) {
    if (!WellFormedPinUpdate(update)) {
      ++result.refused;
      continue;
    }
    if (update.removed()) {
      pins.UnpinDigest(update.digest());
      ++result.adopted;
      continue;
    }
    PinOwner owner{update.backend_id(), update.tenant(), update.expires_unix_s()};
    if (pins.PinDigest(update.digest(), owner)) {
      ++result.adopted;
    } else {
      ++result.refused;
    }
  }
  return result;
}

}  // namespace spillway
