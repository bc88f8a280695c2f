// See snapshot_source.h.
#include "dataplane/routing/snapshot_source.h"

namespace spillway {

void SnapshotSource::Publish(RoutingSnapshotPtr snapshot) {
  absl::MutexLock lock(&mu_);
  current_ = std::move(snapshot);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

RoutingSnapshotPtr SnapshotSource::Load() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

}  // namespace spillway
