// See traffic_slots.h.
#include "dataplane/usage/traffic_slots.h"

#include <utility>

namespace spillway {
namespace {

uint64_t Pack(int64_t now_unix_ms, uint32_t status, v1::Priority priority) {
  const uint64_t slot = static_cast<uint64_t>(now_unix_ms > 0 ? now_unix_ms : 0) / kTrafficSlotMs;
  return (slot << 16) | (uint64_t{status & 0x3ffu} << 3) | (static_cast<uint64_t>(priority) & 7u);
}

}  // namespace

void TrafficSlots::Add(absl::string_view backend, uint32_t status, v1::Priority priority,
                       bool retried, int64_t now_unix_ms) {
  const uint64_t key = Pack(now_unix_ms, status, priority);
  std::lock_guard<std::mutex> lock(mu_);
  auto slots = by_backend_.find(backend);
  if (slots == by_backend_.end()) {
    if (keys_ >= kMaxKeys) {
      ++dropped_;
      return;
    }
    slots = by_backend_.try_emplace(std::string(backend)).first;
  }
  auto counts = slots->second.find(key);
  if (counts == slots->second.end()) {
    if (keys_ >= kMaxKeys) {
      ++dropped_;
      return;
    }
    ++keys_;
    counts = slots->second.try_emplace(key).first;
  }
  ++counts->second.requests;
  counts->second.retried += retried ? 1 : 0;
}

void TrafficSlots::TakeInto(v1::TrafficReport& report) {
  absl::flat_hash_map<std::string, SlotMap> taken;
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    taken.swap(by_backend_);
    dropped = std::exchange(dropped_, 0);
    keys_ = 0;
  }
  report.set_dropped(report.dropped() + dropped);
  for (const auto& [backend, slots] : taken) {
    for (const auto& [key, counts] : slots) {
      v1::TrafficSlot* slot = report.add_slots();
      slot->set_slot_unix_ms(static_cast<int64_t>(key >> 16) * kTrafficSlotMs);
      slot->set_backend_id(backend);
      slot->set_status(static_cast<uint32_t>((key >> 3) & 0x3ffu));
      slot->set_priority(static_cast<v1::Priority>(key & 7u));
      slot->set_requests(counts.requests);
      slot->set_retried(counts.retried);
    }
  }
}

}  // namespace spillway
