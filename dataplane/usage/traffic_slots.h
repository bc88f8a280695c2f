// Requests counted per backend, final status and tenant priority in 100 ms slots, for the
// control plane's drill reports. One per I/O thread beside its usage shard: the request path
// takes an uncontended lock and, but for a new slot or backend, allocates nothing.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

inline constexpr int64_t kTrafficSlotMs = 100;

class TrafficSlots {
 public:
  // Keys kept between two collections; beyond it requests are counted as dropped, so a
  // control plane that stops reading (or a flood of backends) cannot grow the agent.
  static constexpr std::size_t kMaxKeys = 65536;

  void Add(absl::string_view backend, uint32_t status, v1::Priority priority, bool retried,
           int64_t now_unix_ms);
  // Appends what was counted since the last call to `report` and starts afresh.
  void TakeInto(v1::TrafficReport& report);

 private:
  struct Counts {
    uint64_t requests = 0;
    uint64_t retried = 0;
  };
  // slot index, status and priority packed into one key: (slot << 16) | (status << 3) | prio.
  using SlotMap = absl::flat_hash_map<uint64_t, Counts>;

  std::mutex mu_;
  absl::flat_hash_map<std::string, SlotMap> by_backend_ ABSL_GUARDED_BY(mu_);
  std::size_t keys_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spillway
