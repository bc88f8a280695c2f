// The agent's outbox towards the control plane: nothing the protocol depends on is dropped,
// however many reports pile up while the stream is slow or away.
#include "dataplane/sync/sync_outbox.h"

#include <gtest/gtest.h>

#include <set>

namespace spillway {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

v1::AgentMessage Throttle(const std::string& backend, int64_t at, uint32_t retry_after_ms) {
  v1::AgentMessage message;
  v1::ThrottleEvent* event = message.mutable_throttle()->add_events();
  event->set_backend_id(backend);
  event->set_at_unix_ms(at);
  event->set_retry_after_ms(retry_after_ms);
  return message;
}

v1::AgentMessage Usage(uint64_t sequence) {
  v1::AgentMessage message;
  message.mutable_usage()->set_agent_id("agent");
  message.mutable_usage()->set_sequence(sequence);
  return message;
}

std::vector<v1::AgentMessage> Drain(SyncOutbox& outbox) {
  std::vector<v1::AgentMessage> out;
  while (!outbox.empty()) {
    std::optional<v1::AgentMessage> message = outbox.Take(kNow);
    if (message.has_value()) {
      out.push_back(*std::move(message));
    }
  }
  return out;
}

TEST(SyncOutboxTest, AnAckSurvivesAFloodOfThrottleReports) {
  SyncOutbox outbox;
  v1::AgentMessage ack;
  ack.mutable_ack()->set_version(5);
  outbox.Add(ack);
  for (int i = 0; i < 5000; ++i) {
    outbox.Add(Throttle(i % 2 == 0 ? "a/x" : "b/y", kNow, 1000 + i));
  }
  const std::vector<v1::AgentMessage> sent = Drain(outbox);
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(sent.front().has_ack());
  EXPECT_EQ(sent.front().ack().version(), 5u);
  // The throttles are coalesced to the longest per backend, not dropped.
  std::map<std::string, uint32_t> longest;
  for (const v1::AgentMessage& message : sent) {
    for (const v1::ThrottleEvent& event : message.throttle().events()) {
      longest[event.backend_id()] = std::max(longest[event.backend_id()], event.retry_after_ms());
    }
  }
  EXPECT_EQ(longest["a/x"], 1000u + 4998);
  EXPECT_EQ(longest["b/y"], 1000u + 4999);
  EXPECT_LE(sent.size(), 3u);
}

TEST(SyncOutboxTest, UsageBatchesAreNeverDroppedTheProducerIsToldToWait) {
  SyncOutbox outbox(8);
  uint64_t sequence = 0;
  while (outbox.HasRoom()) {
    ASSERT_LT(sequence, 1000u) << "the queue is not bounded";
    outbox.Add(Usage(++sequence));
  }
  EXPECT_EQ(sequence, 8u);
  for (int i = 0; i < 2000; ++i) {
    outbox.Add(Throttle("a/x", kNow, 1000));  // reports never take a batch's place
  }
  std::vector<uint64_t> sequences;
  for (const v1::AgentMessage& message : Drain(outbox)) {
    if (message.has_usage()) {
      sequences.push_back(message.usage().sequence());
    }
  }
  EXPECT_EQ(sequences, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(SyncOutboxTest, TheLatestVerdictHealthAndDemandWinAndPastThrottlesAreNotSent) {
  SyncOutbox outbox;
  v1::AgentMessage ack;
  ack.mutable_ack()->set_version(6);
  outbox.Add(ack);
  v1::AgentMessage nack;
  nack.mutable_nack()->set_version(7);
  outbox.Add(nack);
  for (v1::HealthState state : {v1::HEALTH_STATE_UNHEALTHY, v1::HEALTH_STATE_HEALTHY}) {
    v1::AgentMessage health;
    health.mutable_health()->add_transitions()->set_backend_id("a/x");
    health.mutable_health()->mutable_transitions(0)->set_to(state);
    outbox.Add(health);
  }
  outbox.Add(Throttle("old/z", kNow - 5000, 1000));
  const std::vector<v1::AgentMessage> sent = Drain(outbox);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].nack().version(), 7u);
  ASSERT_EQ(sent[1].health().transitions_size(), 1);
  EXPECT_EQ(sent[1].health().transitions(0).to(), v1::HEALTH_STATE_HEALTHY);
}

v1::AgentMessage Pins(int first, int count) {
  v1::AgentMessage message;
  for (int i = first; i < first + count; ++i) {
    v1::PinUpdate* update = message.mutable_pins()->add_updates();
    update->set_digest(std::to_string(i));
  }
  return message;
}

// Pin updates jump the usage queue (a follow-up may hit another agent milliseconds later),
// travel in bounded messages, and past their bound are dropped and counted: the request path
// that produces them never waits, and a lost one costs a probe, not a wrong answer.
TEST(SyncOutboxTest, PinUpdatesGoFirstInBoundedMessagesAndAreDroppedPastTheirBound) {
  SyncOutbox outbox;
  EXPECT_FALSE(SyncOutbox::IsQueued(Pins(0, 1)));
  outbox.Add(Usage(1));
  outbox.Add(Pins(0, SyncOutbox::kMaxPinsPerMessage + 5));
  std::optional<v1::AgentMessage> first = outbox.Take(kNow);
  ASSERT_TRUE(first.has_value() && first->has_pins());
  EXPECT_EQ(first->pins().updates_size(), SyncOutbox::kMaxPinsPerMessage);
  EXPECT_EQ(first->pins().updates(0).digest(), "0");
  std::optional<v1::AgentMessage> second = outbox.Take(kNow);
  ASSERT_TRUE(second.has_value() && second->has_pins());
  EXPECT_EQ(second->pins().updates_size(), 5);
  std::optional<v1::AgentMessage> third = outbox.Take(kNow);
  ASSERT_TRUE(third.has_value() && third->has_usage());

  outbox.Add(Pins(0, static_cast<int>(SyncOutbox::kMaxPendingPins) + 7));
  EXPECT_EQ(outbox.dropped_pins(), 7u);
  outbox.OnStreamEnded();  // pins wait for the next stream
  int pending = 0;
  for (const v1::AgentMessage& message : Drain(outbox)) {
    pending += message.pins().updates_size();
  }
  EXPECT_EQ(pending, static_cast<int>(SyncOutbox::kMaxPendingPins));
}

// Drill traffic never makes the reporter wait: reports merge into one, bounded.
TEST(SyncOutboxTest, TrafficReportsMergeAndAreBounded) {
  SyncOutbox outbox;
  v1::AgentMessage traffic;
  v1::TrafficSlot* slot = traffic.mutable_traffic()->add_slots();
  slot->set_backend_id("a");
  slot->set_requests(1);
  EXPECT_FALSE(SyncOutbox::IsQueued(traffic));
  for (std::size_t i = 0; i < SyncOutbox::kMaxPendingTrafficSlots + 3; ++i) {
    outbox.Add(traffic);
  }
  std::optional<v1::AgentMessage> merged = outbox.Take(kNow);
  ASSERT_TRUE(merged.has_value() && merged->has_traffic());
  EXPECT_EQ(merged->traffic().slots_size(), static_cast<int>(SyncOutbox::kMaxPendingTrafficSlots));
  EXPECT_EQ(merged->traffic().dropped(), 3u);
  EXPECT_TRUE(outbox.empty());
}

}  // namespace
}  // namespace spillway
