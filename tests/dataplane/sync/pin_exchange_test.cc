// Pins relayed from the region's other agents: every field comes from another process, so what
// is malformed is refused and counted, and what is well formed lands in the local pins.
#include "dataplane/sync/pin_exchange.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace spillway {
namespace {

constexpr int64_t kNow = 1'800'000'000;

TEST(PinExchangeTest, WellFormedUpdatesAreAdoptedAndMalformedOnesRefused) {
  ObjectPinsOptions options;
  options.now_unix_s = [] { return kNow; };
  absl::StatusOr<std::unique_ptr<ObjectPins>> pins = ObjectPins::Open(options);
  ASSERT_TRUE(pins.ok()) << pins.status();
  const std::string a = *ObjectPins::DigestOf("resp_a");
  const std::string b = *ObjectPins::DigestOf("resp_b");
  const PinOwner owner{"east/gpt-4o", "app", kNow + 60};

  v1::PinUpdates updates;
  *updates.add_updates() = PinUpdateOf(a, &owner);
  *updates.add_updates() = PinUpdateOf(b, &owner);
  *updates.add_updates() = PinUpdateOf("not-sixteen", &owner);
  PinOwner huge = owner;
  huge.tenant = std::string(4096, 't');
  *updates.add_updates() = PinUpdateOf(*ObjectPins::DigestOf("resp_c"), &huge);
  PinOwner nobody = owner;
  nobody.backend_id.clear();
  *updates.add_updates() = PinUpdateOf(*ObjectPins::DigestOf("resp_d"), &nobody);
  *updates.add_updates() = PinUpdateOf(b, nullptr);  // deleted after all

  const PinAdoption adoption = AdoptPinUpdates(updates, **pins);
  EXPECT_EQ(adoption.adopted, 3u);
  EXPECT_EQ(adoption.refused, 3u);
  ASSERT_TRUE((*pins)->Find("resp_a").has_value());
  EXPECT_EQ((*pins)->Find("resp_a")->backend_id, "east/gpt-4o");
  EXPECT_EQ((*pins)->Find("resp_a")->tenant, "app");
  EXPECT_FALSE((*pins)->Find("resp_b").has_value());
  EXPECT_FALSE((*pins)->Find("resp_c").has_value());
  EXPECT_FALSE((*pins)->Find("resp_d").has_value());
  EXPECT_EQ((*pins)->size(), 1u);
}

}  // namespace
}  // namespace spillway
