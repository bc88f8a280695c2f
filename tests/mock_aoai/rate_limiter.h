// Per-deployment admission as Azure does it: TPM/RPM token buckets sized to a short window, or
// PTU utilization over a sliding window; charged up front, refunded once usage is known.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace spillway::mock {

// Injected so tests can step time instead of sleeping.
using Clock = std::function<absl::Time()>;

struct LimitSpec {
  int64_t tpm = 1'000'000;
  int64_t rpm = 6'000;
  bool enforce_rpm = true;
  int64_t ptu = 0;  // > 0: provisioned
  double tokens_per_ptu_minute = 2500;
  absl::Duration window = absl::Seconds(10);
};

enum class LimitCause { kNone, kTokens, kRequests, kUtilization };

// What the x-ratelimit-* and utilization headers report.
struct LimitSnapshot {
  int64_t limit_tokens = 0;      // per minute
  int64_t remaining_tokens = 0;  // left in the current evaluation window
  int64_t limit_requests = 0;
  int64_t remaining_requests = 0;
  std::optional<double> utilization_percent;  // provisioned deployments only
};

struct Admission {
  bool admitted = false;
  LimitCause cause = LimitCause::kNone;
  absl::Duration retry_after;  // when rejected: until this very request would be admitted
  LimitSnapshot snapshot;
  uint64_t ticket = 0;  // names the charge for Refund
};

class RateLimiter {
 public:
  RateLimiter(const LimitSpec& spec, Clock clock);

  // Charges one request of `tokens` if both limits admit it; otherwise charges nothing.
  // A request larger than a whole window is admitted once the window is empty (full bucket),
  // which leaves the bucket in debt, rather than never.
  Admission Acquire(int64_t tokens);
  // Gives back `tokens` of the charge named by `ticket` (the unused part of max_tokens). Charges
  // that already left a provisioned window, or predate Reset, are not refunded.
  void Refund(uint64_t ticket, int64_t tokens);
  LimitSnapshot Snapshot();
  void Reset();

  const LimitSpec& spec() const { return spec_; }

 private:
  // Capacity refilled continuously at rate/s, starting full.
  struct Bucket {
    double capacity = 0;
    double rate_per_second = 0;
    double level = 0;
    absl::Time updated;

    void Refill(absl::Time now);
    // Time until `cost` (capped at capacity) fits.
    absl::Duration Wait(double cost) const;
  };
  struct Charge {
    absl::Time at;
    double tokens;
  };

  void AdvanceLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  LimitSnapshot SnapshotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration UtilizationWaitLocked(double cost, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LimitSpec spec_;
  const Clock clock_;
  const double ptu_capacity_;  // tokens per window at 100% utilization

  absl::Mutex mu_;
  Bucket tokens_ ABSL_GUARDED_BY(mu_);
  Bucket requests_ ABSL_GUARDED_BY(mu_);
  std::deque<Charge> window_ ABSL_GUARDED_BY(mu_);  // provisioned: charges inside the window
  uint64_t window_front_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  double window_used_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t first_valid_ticket_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace spillway::mock
