// See pin_update_rules.h.
#include "common/pin_update_rules.h"

namespace spillway {

bool WellFormedPinUpdate(const v1::PinUpdate& update) {
  if (update.digest().size() != kPinDigestBytes) {
    return false;
  }
  if (update.removed()) {
    return true;
  }
  return !update.backend_id().empty() && update.backend_id().size() <= kMaxPinOwnerStringBytes &&
         update.tenant().size() <= kMaxPinOwnerStringBytes;
}

}  // namespace spillway
