// The drills' traffic slots: counted per backend, status and priority in 100 ms slots, taken
// once, and bounded.
#include "dataplane/usage/traffic_slots.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>

namespace spillway {
namespace {

using Key = std::tuple<int64_t, std::string, uint32_t, int>;

std::map<Key, std::pair<uint64_t, uint64_t>> ByKey(const v1::TrafficReport& report) {
  std::map<Key, std::pair<uint64_t, uint64_t>> out;
  for (const v1::TrafficSlot& slot : report.slots()) {
    out[{slot.slot_unix_ms(), slot.backend_id(), slot.status(), slot.priority()}] = {
        slot.requests(), slot.retried()};
  }
  return out;
}

TEST(TrafficSlotsTest, CountsPerSlotBackendStatusAndPriorityAndIsTakenOnce) {
  TrafficSlots slots;
  constexpr int64_t kT = 1'796'483'600'000;
  slots.Add("a/gpt-4o", 200, v1::PRIORITY_STANDARD, false, kT + 10);
  slots.Add("a/gpt-4o", 200, v1::PRIORITY_STANDARD, true, kT + 99);
  slots.Add("a/gpt-4o", 200, v1::PRIORITY_STANDARD, false, kT + 100);  // the next slot
  slots.Add("b/gpt-4o", 429, v1::PRIORITY_BATCH, false, kT + 50);
  slots.Add("", 503, v1::PRIORITY_UNSPECIFIED, false, kT + 50);
  v1::TrafficReport report;
  slots.TakeInto(report);
  const auto counted = ByKey(report);
  ASSERT_EQ(counted.size(), 4u);
  EXPECT_EQ(counted.at(Key(kT, "a/gpt-4o", 200, v1::PRIORITY_STANDARD)), std::make_pair(2ul, 1ul));
  EXPECT_EQ(counted.at(Key(kT + 100, "a/gpt-4o", 200, v1::PRIORITY_STANDARD)),
            std::make_pair(1ul, 0ul));
  EXPECT_EQ(counted.at(Key(kT, "b/gpt-4o", 429, v1::PRIORITY_BATCH)), std::make_pair(1ul, 0ul));
  EXPECT_EQ(counted.at(Key(kT, "", 503, v1::PRIORITY_UNSPECIFIED)), std::make_pair(1ul, 0ul));
  v1::TrafficReport again;
  slots.TakeInto(again);
  EXPECT_EQ(again.slots_size(), 0);
}

TEST(TrafficSlotsTest, PastItsBoundItCountsWhatItDrops) {
  TrafficSlots slots;
  const int64_t extra = 5;
  for (int64_t i = 0; i < static_cast<int64_t>(TrafficSlots::kMaxKeys) + extra; ++i) {
    slots.Add("a", 200, v1::PRIORITY_STANDARD, false, i * kTrafficSlotMs);
  }
  v1::TrafficReport report;
  slots.TakeInto(report);
  EXPECT_EQ(report.slots_size(), static_cast<int>(TrafficSlots::kMaxKeys));
  EXPECT_EQ(report.dropped(), static_cast<uint64_t>(extra));
}

}  // namespace
}  // namespace spillway
