// What the agent has yet to tell the control plane, waiting for the stream's writer. Nothing
// the protocol depends on is dropped: reports that only matter in their latest form are
// coalesced (the table verdict, per-backend health and throttles, demand), and everything
// else (usage batches) waits in a bounded queue whose producer is made to wait when it is full.
// Pin updates are the exception: the request path produces them and must not wait, and a lost
// one costs a probe later (docs/pinning.md), so past kMaxPendingPins they are counted and dropped.
// Drill traffic slots too: they merge into one pending report, and past a bound are counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

// Not thread-safe: the sync client guards it with its own mutex.
class SyncOutbox {
 public:
  static constexpr std::size_t kMaxPendingPins = 16384;
  // Drill traffic slots waiting for the stream (best effort, like pins).
  static constexpr std::size_t kMaxPendingTrafficSlots = 65536;
  static constexpr int kMaxPinsPerMessage = 1024;

  explicit SyncOutbox(std::size_t max_queued = 64) : max_queued_(max_queued) {}

  // True for messages that go through the bounded queue (and so may have to wait for room).
  static bool IsQueued(const v1::AgentMessage& message);
  bool HasRoom() const { return queued_.size() < max_queued_; }

  // Adds `message`. A queued message must only be added while HasRoom().
  void Add(v1::AgentMessage message);
  bool empty() const;
  // The next message to write: the table verdict first, then pin updates (a follow-up may reach
  // another agent milliseconds later), queued messages in order, then the latest demand, health
  // and throttle reports (throttles already over are left out).
  std::optional<v1::AgentMessage> Take(int64_t now_unix_ms);
  // A stream ended: queued usage batches are dropped, as the usage shipper replays its spool
  // on the next stream; coalesced reports and pin updates stay for it.
  void OnStreamEnded() { queued_.clear(); }
  uint64_t dropped_pins() const { return dropped_pins_; }

 private:
  const std::size_t max_queued_;
  std::optional<v1::AgentMessage> verdict_;  // the latest ack or nack
  std::deque<v1::AgentMessage> queued_;
  std::deque<v1::PinUpdate> pins_;
  uint64_t dropped_pins_ = 0;
  std::optional<v1::DemandReport> demand_;
  std::optional<v1::TrafficReport> traffic_;
  std::map<std::string, v1::HealthTransition> health_;  // latest per backend
  std::map<std::string, v1::ThrottleEvent> throttles_;  // longest per backend
};

}  // namespace spillway
