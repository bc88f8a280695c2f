// See sync_outbox.h.
#include "dataplane/sync/sync_outbox.h"

namespace spillway {
namespace {

int64_t ThrottleEnd(const v1::ThrottleEvent& event) {
  return event.at_unix_ms() + event.retry_after_ms();
}

}  // namespace

bool SyncOutbox::IsQueued(const v1::AgentMessage& message) {
  switch (message.message_case()) {
    case v1::AgentMessage::kAck:
    case v1::AgentMessage::kNack:
    case v1::AgentMessage::kHealth:
    case v1::AgentMessage::kThrottle:
    case v1::AgentMessage::kDemand:
    case v1::AgentMessage::kPins:
    case v1::AgentMessage::kTraffic:
      return false;
    default:
      return true;
  }
}

void SyncOutbox::Add(v1::AgentMessage message) {
  switch (message.message_case()) {
    case v1::AgentMessage::kAck:
    case v1::AgentMessage::kNack:
      // The control plane records the latest verdict only; an older one says nothing more.
      verdict_ = std::move(message);
      return;
    case v1::AgentMessage::kHealth:
      for (v1::HealthTransition& transition : *message.mutable_health()->mutable_transitions()) {
        health_[transition.backend_id()] = std::move(transition);
      }
      return;
    case v1::AgentMessage::kThrottle:
      for (v1::ThrottleEvent& event : *message.mutable_throttle()->mutable_events()) {
        auto [it, added] = throttles_.try_emplace(event.backend_id(), event);
        if (!added && ThrottleEnd(event) > ThrottleEnd(it->second)) {
          it->second = std::move(event);
        }
      }
      return;
    case v1::AgentMessage::kDemand:
      demand_ = std::move(*message.mutable_demand());
      return;
    case v1::AgentMessage::kTraffic: {
      // Reports waiting for a slow stream merge into one, up to a bound; the rest is counted.
      v1::TrafficReport& pending = traffic_.has_value() ? *traffic_ : traffic_.emplace();
      pending.set_dropped(pending.dropped() + message.traffic().dropped());
      for (v1::TrafficSlot& slot : *message.mutable_traffic()->mutable_slots()) {
        if (static_cast<std::size_t>(pending.slots_size()) >= kMaxPendingTrafficSlots) {
          pending.set_dropped(pending.dropped() + 1);
          continue;
        }
        *pending.add_slots() = std::move(slot);
      }
      return;
    }
    case v1::AgentMessage::kPins:
      for (v1::PinUpdate& update : *message.mutable_pins()->mutable_updates()) {
        if (pins_.size() >= kMaxPendingPins) {
          ++dropped_pins_;
          continue;
        }
        pins_.push_back(std::move(update));
      }
      return;
    default:
      queued_.push_back(std::move(message));
      return;
  }
}

bool SyncOutbox::empty() const {
  return !verdict_.has_value() && pins_.empty() && queued_.empty() && !demand_.has_value() &&
         !traffic_.has_value() && health_.empty() && throttles_.empty();
}

std::optional<v1::AgentMessage> SyncOutbox::Take(int64_t now_unix_ms) {
  v1::AgentMessage message;
  if (verdict_.has_value()) {
    message = std::move(*verdict_);
    verdict_.reset();
  } else if (!pins_.empty()) {
    v1::PinUpdates* updates = message.mutable_pins();
    while (!pins_.empty() && updates->updates_size() < kMaxPinsPerMessage) {
      *updates->add_updates() = std::move(pins_.front());
      pins_.pop_front();
    }
  } else if (!queued_.empty()) {
    message = std::move(queued_.front());
    queued_.pop_front();
  } else if (demand_.has_value()) {
    *message.mutable_demand() = std::move(*demand_);
    demand_.reset();
  } else if (traffic_.has_value()) {
    *message.mutable_traffic() = std::move(*traffic_);
    traffic_.reset();
  } else if (!health_.empty()) {
    for (auto& [backend, transition] : health_) {
      *message.mutable_health()->add_transitions() = std::move(transition);
    }
    health_.clear();
  } else if (!throttles_.empty()) {
    for (auto& [backend, event] : throttles_) {
      if (ThrottleEnd(event) > now_unix_ms) {
        *message.mutable_throttle()->add_events() = std::move(event);
      }
    }
    throttles_.clear();
    if (message.throttle().events().empty()) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  return message;
}

}  // namespace spillway
