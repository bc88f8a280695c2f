// See router.h.
#include "dataplane/routing/router.h"

namespace spillway {
namespace {

// Appends `members` (the ones selected by `want_local`) in a weighted random order:
// repeated weighted draws without replacement. Tiers are small, so O(n^2) is cheapest.
void AppendWeighted(const SnapshotTier& tier, std::optional<bool> want_local,
                    uint64_t (*next_random)(void*), void* random_state, CandidatePlan* plan) {
  absl::InlinedVector<const SnapshotMember*, 8> pending;
  uint64_t total = 0;
  for (const SnapshotMember& member : tier.members) {
    if (!want_local.has_value() || member.local == *want_local) {
      pending.push_back(&member);
      total += member.weight;
    }
  }
  while (!pending.empty()) {
    uint64_t pick = next_random(random_state) % total;
    std::size_t i = 0;
    while (pick >= pending[i]->weight) {
      pick -= pending[i]->weight;
      ++i;
    }
    plan->push_back(PlannedCandidate{pending[i]->backend, &tier});
    total -= pending[i]->weight;
    pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

}  // namespace

CandidatePlan Router::Plan(const SnapshotRoute& route, uint64_t (*next_random)(void*),
                           void* random_state) {
  CandidatePlan plan;
  if (route.splits.empty()) {
    return plan;
  }
  const SnapshotSplit* split = &route.splits.front();
  if (route.splits.size() > 1) {
    uint64_t pick = next_random(random_state) % 100;
    for (const SnapshotSplit& s : route.splits) {
      if (pick < s.percent) {
        split = &s;
        break;
      }
      pick -= s.percent;
    }
  }
  for (const SnapshotTier& tier : split->tiers) {
    switch (route.locality) {
      case v1::LOCALITY_ANY:
        AppendWeighted(tier, std::nullopt, next_random, random_state, &plan);
        break;
      case v1::LOCALITY_LOCAL_ONLY:
        AppendWeighted(tier, true, next_random, random_state, &plan);
        break;
      default:  // prefer-local
        AppendWeighted(tier, true, next_random, random_state, &plan);
        AppendWeighted(tier, false, next_random, random_state, &plan);
        break;
    }
  }
  return plan;
}

Refusal Admit(const SnapshotBackend& backend, const SnapshotTier& tier, v1::Priority priority,
              int64_t estimated_tokens, SteadyTime now) {
  if (!backend.unusable_reason.empty()) {
    return Refusal::kUnusable;
  }
  if (backend.window_capacity_tokens > 0) {
    uint32_t ceiling = 100;
    if (priority == v1::PRIORITY_BATCH) {
      ceiling = tier.batch_ceiling_percent;
    } else if (priority == v1::PRIORITY_STANDARD) {
      ceiling = tier.standard_ceiling_percent;
    }
    const int64_t allowed = backend.window_capacity_tokens * ceiling / 100;
    if (backend.state->load.Sum(now) + estimated_tokens > allowed) {
      return Refusal::kNoHeadroom;
    }
  }
  if (!backend.state->breaker.TryAcquire(now)) {
    return Refusal::kBlocked;
  }
  return Refusal::kNone;
}

}  // namespace spillway
