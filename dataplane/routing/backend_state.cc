// See backend_state.h.
#include "dataplane/routing/backend_state.h"

namespace spillway {

int64_t LoadWindow::SecondOf(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void LoadWindow::Add(SteadyTime now, int64_t tokens) {
  const int64_t second = SecondOf(now);
  Slot& slot = slots_[static_cast<std::size_t>(second % kSlots)];
  int64_t seen = slot.second.load(std::memory_order_acquire);
  if (seen != second) {
    // First charge of this second in this slot: reset it. A lost race only misplaces a
    // few tokens of one second, which an estimate can afford.
    if (slot.second.compare_exchange_strong(seen, second, std::memory_order_acq_rel)) {
      slot.tokens.store(0, std::memory_order_release);
    }
  }
  slot.tokens.fetch_add(tokens, std::memory_order_acq_rel);
}

int64_t LoadWindow::Sum(SteadyTime now) const {
  const int64_t second = SecondOf(now);
  int64_t sum = 0;
  for (const Slot& slot : slots_) {
    const int64_t s = slot.second.load(std::memory_order_acquire);
    if (s > second - kSlots && s <= second) {
      sum += slot.tokens.load(std::memory_order_acquire);
    }
  }
  return sum < 0 ? 0 : sum;
}

std::shared_ptr<BackendState> BackendStateRegistry::Get(const std::string& backend_id) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<BackendState>& state = states_[backend_id];
  if (state == nullptr) {
    state = std::make_shared<BackendState>(options_);
  }
  return state;
}

}  // namespace spillway
