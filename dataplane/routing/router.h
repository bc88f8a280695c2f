// Chooses where a request goes: a split by percent, then the split's tiers in failover
// order, members within a tier by locality and weight. Admission (circuit, cooldown,
// headroom) is checked per attempt, so state learned mid-request is honoured.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/container/inlined_vector.h"
#include "dataplane/routing/routing_snapshot.h"

namespace spillway {

struct PlannedCandidate {
  uint32_t backend = 0;
  const SnapshotTier* tier = nullptr;
};

// Every member of the chosen split in the order to try them.
using CandidatePlan = absl::InlinedVector<PlannedCandidate, 8>;

// The caller owns the random generator (one per I/O thread, so no locking).
class Router {
 public:
  static CandidatePlan Plan(const SnapshotRoute& route, uint64_t (*next_random)(void*),
                            void* random_state);
};

// Why a candidate may not be sent to right now.
enum class Refusal { kNone, kUnusable, kBlocked, kNoHeadroom };

// Checks (and for a half-open circuit, claims) a candidate for one attempt.
Refusal Admit(const SnapshotBackend& backend, const SnapshotTier& tier, v1::Priority priority,
              int64_t estimated_tokens, SteadyTime now);

// A small fast generator for weighted choices; one per I/O thread.
class FastRandom {
 public:
  // splitmix64 spreads nearby seeds (thread ids, counters) over the whole state space.
  explicit FastRandom(uint64_t seed) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    state_ = (z ^ (z >> 31)) | 1;
  }
  uint64_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  static uint64_t Thunk(void* self) { return static_cast<FastRandom*>(self)->Next(); }

 private:
  uint64_t state_;
};

}  // namespace spillway
