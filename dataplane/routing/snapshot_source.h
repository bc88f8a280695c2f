// Where the current routing snapshot lives. Swapped rarely (a new table), read on every
// request: readers keep a per-thread copy and refresh it only when the generation moves,
// so the request path takes no lock and touches no shared reference count.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "dataplane/routing/routing_snapshot.h"

namespace spillway {

class SnapshotSource {
 public:
  void Publish(RoutingSnapshotPtr snapshot);
  RoutingSnapshotPtr Load() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable absl::Mutex mu_;
  RoutingSnapshotPtr current_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

// One per I/O thread.
class CachedSnapshot {
 public:
  explicit CachedSnapshot(const SnapshotSource& source) : source_(source) {}
  const RoutingSnapshotPtr& Get() {
    const uint64_t generation = source_.generation();
    if (generation != generation_) {
      snapshot_ = source_.Load();
      generation_ = generation;
    }
    return snapshot_;
  }

 private:
  const SnapshotSource& source_;
  uint64_t generation_ = 0;
  RoutingSnapshotPtr snapshot_;
};

}  // namespace spillway
