// Per-tenant TPM and RPM quotas, enforced like Azure's per-minute quota: a token bucket per
// dimension that holds one minute's budget and refills continuously. With a control plane
// each agent enforces its share of the tenant's stamp-wide limit (TenantBudgets); standalone
// it enforces the whole limit. State is keyed by tenant name, so it survives table swaps.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/routing/circuit_breaker.h"
#include "dataplane/http/rate_limit_headers.h"
#include "spillway/v1/agent_sync.pb.h"
#include "spillway/v1/routing_table.pb.h"

namespace spillway {

// One minute's budget that refills at budget/60 per second. Not thread-safe.
class TokenBucket {
 public:
  bool limited() const { return limited_; }
  double tokens() const { return tokens_; }
  double budget_per_minute() const { return budget_; }

  // Sets the per-minute budget. A bucket that had none starts full when `fill`, else empty.
  // Otherwise the tokens held stay, capped at the new budget: a smaller share never holds
  // more than a minute of itself, a larger one gets no tokens for free.
  void SetBudget(double per_minute, SteadyTime now, bool fill);
  void Unlimit();
  void Refill(SteadyTime now);
  // Seconds until `cost` may be taken; 0 if now. A cost above the whole budget fits once the
  // bucket is full (the tenant then owes the rest). Infinite when the budget is 0.
  double SecondsUntilFits(double cost) const;
  void Take(double amount) { tokens_ -= amount; }
  void Give(double amount);

 private:
  bool limited_ = false;
  double budget_ = 0;  // capacity, and 60 x the refill rate per second
  double tokens_ = 0;  // may go negative: corrections after the fact can overdraw
  SteadyTime last_{};
};

struct QuotaDecision {
  bool admitted = true;
  std::chrono::milliseconds retry_after{0};  // refused: when the charge will fit
  bool tokens_exhausted = false;             // which limit refused it
  bool requests_exhausted = false;
  RateLimitHeaders headers;
};

struct TenantLimiterOptions {
  // Shares come from the control plane; otherwise each agent enforces whole limits.
  bool control_plane = false;
  // How often demand is reported: a refused request counts as its cost x its wait / this
  // window (the tokens waiting clients represent per window).
  std::chrono::milliseconds demand_window{2000};
  // The retry-after given while this agent's share of a limit is 0 (the next rebalance,
  // which sees the refused demand, gives it one).
  std::chrono::milliseconds zero_share_retry_after{2000};
  // Control-plane mode: where the last split is kept, so an agent restarted while the
  // control plane is away enforces its last share rather than none.
  std::string budgets_path;
};

// One tenant's buckets; a small mutex per tenant keeps tenants independent.
class TenantQuota {
 public:
  explicit TenantQuota(const TenantLimiterOptions& options) : options_(options) {}
  TenantQuota(const TenantQuota&) = delete;
  TenantQuota& operator=(const TenantQuota&) = delete;

  // Charges `tokens` and one request if both fit, else refuses with the time until they do.
  // `limits` are the tenant's stamp-wide limits from the current table.
  QuotaDecision TryCharge(const v1::TenantLimits& limits, int64_t tokens, SteadyTime now);
  // After the response: `token_delta` more tokens (negative: a refund); `refund_request`
  // returns the request too.
  void Settle(int64_t token_delta, bool refund_request, SteadyTime now);
  // This agent's share from the control plane; `budget` null: no share (whole limits).
  void SetShare(const v1::TenantBudget* budget, SteadyTime now);
  // Demand since the last call, in whole tokens and requests asked for.
  std::pair<uint64_t, uint64_t> TakeDemand();
  // What the headers would say now, without charging.
  RateLimitHeaders Peek(SteadyTime now);
  // For /status: {"tokens_per_minute": budget in force, "remaining_tokens": ..., ...}.
  boost::json::object Describe(SteadyTime now);

 private:
  void SyncLimits(const v1::TenantLimits& limits, SteadyTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Configure(TokenBucket& bucket, uint64_t limit, uint64_t share, uint64_t basis,
                 SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  RateLimitHeaders Headers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TenantLimiterOptions options_;
  absl::Mutex mu_;
  uint64_t limit_tokens_ ABSL_GUARDED_BY(mu_) = 0;  // stamp-wide, from the table
  uint64_t limit_requests_ ABSL_GUARDED_BY(mu_) = 0;
  bool limits_known_ ABSL_GUARDED_BY(mu_) = false;  // a request brought the table's limits
  bool has_share_ ABSL_GUARDED_BY(mu_) = false;
  v1::TenantBudget share_ ABSL_GUARDED_BY(mu_);
  TokenBucket tokens_ ABSL_GUARDED_BY(mu_);
  TokenBucket requests_ ABSL_GUARDED_BY(mu_);
  double demand_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  double demand_requests_ ABSL_GUARDED_BY(mu_) = 0;
};

// Every tenant's quota by name; shared by all I/O threads (which cache the lookups).
class TenantLimiter {
 public:
  explicit TenantLimiter(TenantLimiterOptions options) : options_(options) {}

  const TenantLimiterOptions& options() const { return options_; }
  // The tenant's quota, created on first use.
  std::shared_ptr<TenantQuota> Get(absl::string_view tenant);
  // A new set of shares from the control plane: tenants not in it lose theirs. Persisted
  // to options().budgets_path when set.
  void ApplyBudgets(const v1::TenantBudgets& budgets, SteadyTime now);
  // Applies the split persisted by an earlier run, if any; a missing file is fine.
  absl::Status LoadPersistedBudgets(SteadyTime now);
  uint64_t budget_epoch() const;
  // For /status: {"budget_epoch": N, "tenants": {"name": {...}}}.
  boost::json::object Describe(SteadyTime now) const;
  // Per-tenant demand since the last report (tenants that asked for nothing are left out);
  // nullopt while no tenant has a quota, so agents without quotas stay silent.
  std::optional<v1::DemandReport> TakeDemandReport(SteadyTime now);

 private:
  void Apply(const v1::TenantBudgets& budgets, SteadyTime now);

  const TenantLimiterOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<TenantQuota>> quotas_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  SteadyTime last_report_ ABSL_GUARDED_BY(mu_){};
};

// One per I/O thread: tenant name -> quota without touching the limiter's lock.
class TenantQuotaCache {
 public:
  explicit TenantQuotaCache(TenantLimiter* limiter) : limiter_(limiter) {}
  // Null when there is no limiter (tests, tools).
  TenantQuota* Find(absl::string_view tenant);

 private:
  TenantLimiter* limiter_;
  absl::flat_hash_map<std::string, std::shared_ptr<TenantQuota>> quotas_;
};

}  // namespace spillway
