// See rate_limiter.h. Buckets hold fractional tokens so refill is exact at any request rate;
// headers round down, waits round up.
#include "tests/mock_aoai/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace spillway::mock {
namespace {

// Absorbs floating-point drift so a client that waited exactly retry-after-ms gets in.
constexpr double kEpsilon = 1e-6;

int64_t Floor(double value) { return static_cast<int64_t>(std::floor(std::max(0.0, value))); }

}  // namespace

void RateLimiter::Bucket::Refill(absl::Time now) {
  if (now > updated) {
    level = std::min(capacity, level + rate_per_second * absl::ToDoubleSeconds(now - updated));
    updated = now;
  }
}

absl::Duration RateLimiter::Bucket::Wait(double cost) const {
  const double needed = std::min(cost, capacity) - level;
  if (needed <= kEpsilon) {
    return absl::ZeroDuration();
  }
  return absl::Seconds(needed / rate_per_second);
}

RateLimiter::RateLimiter(const LimitSpec& spec, Clock clock)
    : spec_(spec),
      clock_(std::move(clock)),
      ptu_capacity_(static_cast<double>(spec.ptu) * spec.tokens_per_ptu_minute *
                    absl::ToDoubleSeconds(spec.window) / 60.0) {
  Reset();
}

void RateLimiter::Reset() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  const double window_minutes = absl::ToDoubleSeconds(spec_.window) / 60.0;
  // A bucket holds one window's worth of the per-minute limit, and never less than one
  // request, or a low RPM would admit nothing over a 1 s window.
  tokens_ = {std::max(1.0, static_cast<double>(spec_.tpm) * window_minutes),
             static_cast<double>(spec_.tpm) / 60.0, 0, now};
  requests_ = {std::max(1.0, static_cast<double>(spec_.rpm) * window_minutes),
               static_cast<double>(spec_.rpm) / 60.0, 0, now};
  tokens_.level = tokens_.capacity;
  requests_.level = requests_.capacity;
  window_.clear();
  window_used_ = 0;
  window_front_ticket_ = next_ticket_;
  first_valid_ticket_ = next_ticket_;
}

void RateLimiter::AdvanceLocked(absl::Time now) {
  tokens_.Refill(now);
  requests_.Refill(now);
  while (!window_.empty() && window_.front().at + spec_.window <= now) {
    window_used_ -= window_.front().tokens;
    window_.pop_front();
    ++window_front_ticket_;
  }
  if (window_.empty()) {
    window_used_ = 0;  // no drift carried over an empty window
  }
}

absl::Duration RateLimiter::UtilizationWaitLocked(double cost, absl::Time now) const {
  const double excess = window_used_ + std::min(cost, ptu_capacity_) - ptu_capacity_;
  if (excess <= kEpsilon) {
    return absl::ZeroDuration();
  }
  double freed = 0;
  for (const Charge& charge : window_) {
    freed += charge.tokens;
    if (freed + kEpsilon >= excess) {
      return charge.at + spec_.window - now;
    }
  }
  return spec_.window;  // unreachable unless rounding: the whole window frees by then
}

LimitSnapshot RateLimiter::SnapshotLocked() const {
  LimitSnapshot snapshot;
  snapshot.limit_requests = spec_.rpm;
  snapshot.remaining_requests = Floor(requests_.level);
  if (spec_.ptu > 0) {
    snapshot.limit_tokens =
        static_cast<int64_t>(static_cast<double>(spec_.ptu) * spec_.tokens_per_ptu_minute);
    snapshot.remaining_tokens = Floor(ptu_capacity_ - window_used_);
    snapshot.utilization_percent = std::max(0.0, 100.0 * window_used_ / ptu_capacity_);
  } else {
    snapshot.limit_tokens = spec_.tpm;
    snapshot.remaining_tokens = Floor(tokens_.level);
  }
  return snapshot;
}

Admission RateLimiter::Acquire(int64_t tokens) {
  const double cost = static_cast<double>(tokens);
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_();
  AdvanceLocked(now);

  Admission admission;
  const bool enforce_rpm = spec_.ptu == 0 || spec_.enforce_rpm;
  const absl::Duration request_wait = enforce_rpm ? requests_.Wait(1) : absl::ZeroDuration();
  const absl::Duration token_wait =
      spec_.ptu > 0 ? UtilizationWaitLocked(cost, now) : tokens_.Wait(cost);
  if (token_wait > absl::ZeroDuration() || request_wait > absl::ZeroDuration()) {
    admission.retry_after = std::max(token_wait, request_wait);
    if (token_wait >= request_wait) {
      admission.cause = spec_.ptu > 0 ? LimitCause::kUtilization : LimitCause::kTokens;
    } else {
      admission.cause = LimitCause::kRequests;
    }
    admission.snapshot = SnapshotLocked();
    return admission;
  }

  admission.admitted = true;
  admission.ticket = next_ticket_++;
  requests_.level -= 1;
  if (spec_.ptu > 0) {
    window_.push_back({now, cost});
    window_used_ += cost;
    if (window_.size() == 1) {
      window_front_ticket_ = admission.ticket;
    }
  } else {
    tokens_.level -= cost;
  }
  admission.snapshot = SnapshotLocked();
  return admission;
}

void RateLimiter::Refund(uint64_t ticket, int64_t tokens) {
  if (tokens <= 0) {
    return;
  }
  const double amount = static_cast<double>(tokens);
  absl::MutexLock lock(&mu_);
  if (ticket < first_valid_ticket_) {
    return;
  }
  AdvanceLocked(clock_());
  if (spec_.ptu > 0) {
    if (ticket < window_front_ticket_ || ticket - window_front_ticket_ >= window_.size()) {
      return;
    }
    // Tickets are consecutive among admitted charges, so the offset is the index.
    Charge& charge = window_[ticket - window_front_ticket_];
    const double refunded = std::min(amount, charge.tokens);
    charge.tokens -= refunded;
    window_used_ -= refunded;
  } else {
    tokens_.level = std::min(tokens_.capacity, tokens_.level + amount);
  }
}

LimitSnapshot RateLimiter::Snapshot() {
  absl::MutexLock lock(&mu_);
  AdvanceLocked(clock_());
  return SnapshotLocked();
}

}  // namespace spillway::mock
