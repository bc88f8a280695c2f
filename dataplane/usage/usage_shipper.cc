// See usage_shipper.h. A batch is deleted only when its own sequence is acked (never a range):
// a batch the control plane failed to store stays spooled and is sent again, whatever
// happened to later ones. Spool I/O runs on the shipper's and the sync client's threads,
// never on an I/O thread.
#include "dataplane/usage/usage_shipper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace spillway {

UsageShipper::UsageShipper(UsageShipperOptions options, UsageMeter& meter, UsageSpool spool,
                           std::string agent_id, SendFn send)
    : options_(options),
      meter_(meter),
      agent_id_(std::move(agent_id)),
      send_(std::move(send)),
      spool_(std::move(spool)) {
  if (!spool_.batches().empty()) {
    spdlog::info(
        "usage spool holds {} unacknowledged batch(es) ({} bytes); they are replayed "
        "when the control plane answers",
        spool_.batches().size(), spool_.bytes());
  }
}

UsageShipper::~UsageShipper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void UsageShipper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void UsageShipper::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.flush_interval, [this] { return stopping_; });
    if (stopping_) {
      break;
    }
    SealLocked();
    ResendStaleLocked();
    PumpLocked();
  }
}

void UsageShipper::Stop(std::chrono::milliseconds wait) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  std::unique_lock<std::mutex> lock(mu_);
  SealLocked();
  PumpLocked();
  const auto deadline = std::chrono::steady_clock::now() + wait;
  wake_.wait_until(lock, deadline, [this] { return !connected_ || spool_.batches().empty(); });
  if (!spool_.batches().empty()) {
    spdlog::info("usage: {} batch(es) stay spooled in {} until the next start",
                 spool_.batches().size(), spool_.dir());
  }
}

void UsageShipper::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  SealLocked();
  PumpLocked();
}

std::size_t UsageShipper::spooled_batches() {
  std::lock_guard<std::mutex> lock(mu_);
  return spool_.batches().size();
}

uint64_t UsageShipper::spooled_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return spool_.bytes();
}

void UsageShipper::SealLocked() {
  std::vector<v1::UsageAggregate> collected = meter_.Collect();
  if (options_.on_collected && !collected.empty()) {
    options_.on_collected(collected);
  }
  unspooled_.insert(unspooled_.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  while (!unspooled_.empty()) {
    const std::size_t n = std::min(unspooled_.size(), options_.max_aggregates_per_batch);
    v1::UsageBatch batch;
    batch.set_agent_id(agent_id_);
    for (std::size_t i = 0; i < n; ++i) {
      *batch.add_aggregates() = unspooled_[i];
    }
    absl::StatusOr<uint64_t> sequence = spool_.Append(batch);
    if (!sequence.ok()) {
      // Kept in memory and merged into the next attempt: nothing is dropped.
      spdlog::error("cannot spool usage ({} aggregates kept in memory, retried in {} ms): {}",
                    unspooled_.size(), options_.flush_interval.count(),
                    std::string(sequence.status().message()));
      return;
    }
    unspooled_.erase(unspooled_.begin(), unspooled_.begin() + static_cast<std::ptrdiff_t>(n));
  }
  if (spool_.bytes() >= options_.spool_warn_bytes && spool_.bytes() >= 2 * warned_at_bytes_) {
    warned_at_bytes_ = spool_.bytes();
    spdlog::warn(
        "usage spool {} holds {} unacknowledged batches ({} bytes): is the control "
        "plane reachable? Nothing is dropped; the spool keeps growing",
        spool_.dir(), spool_.batches().size(), spool_.bytes());
  }
}

void UsageShipper::PumpLocked() {
  if (!connected_) {
    return;
  }
  const auto& batches = spool_.batches();
  for (auto it = batches.lower_bound(next_to_send_);
       it != batches.end() && static_cast<int>(in_flight_.size()) < options_.max_in_flight; ++it) {
    next_to_send_ = it->first + 1;
    SendLocked(it->first);
  }
}

void UsageShipper::SendLocked(uint64_t sequence) {
  absl::StatusOr<v1::UsageBatch> batch = spool_.Read(sequence);
  if (!batch.ok()) {
    // Left in the spool for an operator to look at; retried on the next stream.
    spdlog::error("cannot read spooled usage batch {}: {}", sequence,
                  std::string(batch.status().message()));
    return;
  }
  in_flight_[sequence] = std::chrono::steady_clock::now();
  v1::AgentMessage message;
  *message.mutable_usage() = *std::move(batch);
  send_(std::move(message));
}

void UsageShipper::ResendStaleLocked() {
  if (!connected_) {
    return;
  }
  const auto stale = std::chrono::steady_clock::now() - options_.resend_after;
  std::vector<uint64_t> resend;
  for (const auto& [sequence, sent_at] : in_flight_) {
    if (sent_at <= stale) {
      resend.push_back(sequence);
    }
  }
  for (uint64_t sequence : resend) {
    SendLocked(sequence);
  }
}

void UsageShipper::OnStreamStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  connected_ = true;
  in_flight_.clear();
  next_to_send_ = 0;
  PumpLocked();
}

void UsageShipper::OnStreamEnded() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = false;
    in_flight_.clear();
  }
  wake_.notify_all();
}

void UsageShipper::OnUsageAck(uint64_t sequence) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    spool_.Remove(sequence);
    in_flight_.erase(sequence);
    PumpLocked();
  }
  wake_.notify_all();
}

}  // namespace spillway
