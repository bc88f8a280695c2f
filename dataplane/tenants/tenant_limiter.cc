// See tenant_limiter.h. Buckets hold doubles: a share of 2000 TPM refills 33.3 tokens a
// second, and rounding that to integers would drift by a few percent.
#include "dataplane/tenants/tenant_limiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace spillway {
namespace {

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

void TokenBucket::SetBudget(double per_minute, SteadyTime now, bool fill) {
  per_minute = std::max(0.0, per_minute);
  if (!limited_) {
    limited_ = true;
    budget_ = per_minute;
    tokens_ = fill ? per_minute : 0;
    last_ = now;
    return;
  }
  // Tokens earned at the old rate are kept, up to the new budget: the sum of what the agents
  // hold never exceeds the sum of their shares (the limit), and a rebalance neither creates
  // nor destroys tokens (scaling them down instead lost ~15 % of a limit to frequent
  // rebalances in the three-agent test). Debt stays debt.
  Refill(now);
  budget_ = per_minute;
  tokens_ = std::min(tokens_, budget_);
}

void TokenBucket::Unlimit() {
  limited_ = false;
  budget_ = 0;
  tokens_ = 0;
}

void TokenBucket::Refill(SteadyTime now) {
  if (now <= last_) {
    return;
  }
  tokens_ = std::min(budget_, tokens_ + budget_ / 60.0 * Seconds(now - last_));
  last_ = now;
}

double TokenBucket::SecondsUntilFits(double cost) const {
  if (budget_ <= 0) {
    return std::numeric_limits<double>::infinity();
  }
  const double need = std::min(cost, budget_);
  if (tokens_ >= need) {
    return 0;
  }
  return (need - tokens_) * 60.0 / budget_;
}

void TokenBucket::Give(double amount) { tokens_ = std::min(budget_, tokens_ + amount); }

QuotaDecision TenantQuota::TryCharge(const v1::TenantLimits& limits, int64_t tokens,
                                     SteadyTime now) {
  absl::MutexLock lock(&mu_);
  SyncLimits(limits, now);
  QuotaDecision decision;
  if (!tokens_.limited() && !requests_.limited()) {
    return decision;
  }
  const double cost = static_cast<double>(std::max<int64_t>(tokens, 0));
  double wait = 0;
  bool no_share = false;
  if (tokens_.limited()) {
    tokens_.Refill(now);
    const double w = tokens_.SecondsUntilFits(cost);
    decision.tokens_exhausted = w > 0;
    no_share |= std::isinf(w);
    wait = std::isinf(w) ? wait : std::max(wait, w);
  }
  if (requests_.limited()) {
    requests_.Refill(now);
    const double w = requests_.SecondsUntilFits(1);
    decision.requests_exhausted = w > 0;
    no_share |= std::isinf(w);
    wait = std::isinf(w) ? wait : std::max(wait, w);
  }
  if (decision.tokens_exhausted || decision.requests_exhausted) {
    decision.admitted = false;
    // Rounded up, so a client that waits exactly this long finds the charge fits.
    auto retry = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(wait * 1000.0)));
    if (no_share) {
      retry = std::max(retry, options_.zero_share_retry_after);
    }
    decision.retry_after = std::max(retry, std::chrono::milliseconds(1));
    // A refused client waits and comes back. Counting each refusal as cost x wait / window
    // measures how much is waiting (K clients waiting all the time count K costs per window,
    // whatever the share); counting refusals instead would grow with the retries a small
    // share causes, and the split would feed on itself. Waits count up to a minute.
    const double wait_ms =
        static_cast<double>(std::min<int64_t>(decision.retry_after.count(), 60'000));
    const double weight =
        wait_ms / static_cast<double>(std::max<int64_t>(options_.demand_window.count(), 1));
    demand_tokens_ += cost * weight;
    demand_requests_ += weight;
  } else {
    if (tokens_.limited()) {
      tokens_.Take(cost);
    }
    if (requests_.limited()) {
      requests_.Take(1);
    }
    demand_tokens_ += cost;
    demand_requests_ += 1;
  }
  decision.headers = Headers();
  return decision;
}

void TenantQuota::Settle(int64_t token_delta, bool refund_request, SteadyTime now) {
  absl::MutexLock lock(&mu_);
  if (tokens_.limited() && token_delta != 0) {
    tokens_.Refill(now);
    if (token_delta > 0) {
      tokens_.Take(static_cast<double>(token_delta));
    } else {
      tokens_.Give(static_cast<double>(-token_delta));
    }
  }
  if (requests_.limited() && refund_request) {
    requests_.Refill(now);
    requests_.Give(1);
  }
}

void TenantQuota::SetShare(const v1::TenantBudget* budget, SteadyTime now) {
  absl::MutexLock lock(&mu_);
  has_share_ = budget != nullptr;
  if (has_share_) {
    share_ = *budget;
    if (!limits_known_) {
      // No request has shown this agent the table's limits yet: the control plane's are
      // the same table's, so the share is in force (and on /status) from now on.
      limit_tokens_ = share_.limit_tokens_per_minute();
      limit_requests_ = share_.limit_requests_per_minute();
    }
  } else {
    share_.Clear();
  }
  Configure(tokens_, limit_tokens_, share_.tokens_per_minute(), share_.limit_tokens_per_minute(),
            now);
  Configure(requests_, limit_requests_, share_.requests_per_minute(),
            share_.limit_requests_per_minute(), now);
}

std::pair<uint64_t, uint64_t> TenantQuota::TakeDemand() {
  absl::MutexLock lock(&mu_);
  // Whole units go out; fractions (refused requests weighted by their wait) carry over, so
  // small RPM demand is not rounded away window after window.
  const double tokens = std::floor(demand_tokens_);
  const double requests = std::floor(demand_requests_);
  demand_tokens_ -= tokens;
  demand_requests_ -= requests;
  return {static_cast<uint64_t>(tokens), static_cast<uint64_t>(requests)};
}

RateLimitHeaders TenantQuota::Peek(SteadyTime now) {
  absl::MutexLock lock(&mu_);
  if (tokens_.limited()) {
    tokens_.Refill(now);
  }
  if (requests_.limited()) {
    requests_.Refill(now);
  }
  return Headers();
}

boost::json::object TenantQuota::Describe(SteadyTime now) {
  absl::MutexLock lock(&mu_);
  boost::json::object out;
  for (auto [name, bucket] : {std::pair<const char*, TokenBucket*>{"tokens", &tokens_},
                              std::pair<const char*, TokenBucket*>{"requests", &requests_}}) {
    if (!bucket->limited()) {
      continue;
    }
    bucket->Refill(now);
    out[std::string(name) + "_per_minute"] = bucket->budget_per_minute();
    out[std::string("remaining_") + name] = bucket->tokens();
  }
  out["share_from_control_plane"] = has_share_;
  return out;
}

void TenantQuota::SyncLimits(const v1::TenantLimits& limits, SteadyTime now) {
  limits_known_ = true;
  if (limits.tokens_per_minute() != limit_tokens_) {
    limit_tokens_ = limits.tokens_per_minute();
    Configure(tokens_, limit_tokens_, share_.tokens_per_minute(), share_.limit_tokens_per_minute(),
              now);
  }
  if (limits.requests_per_minute() != limit_requests_) {
    limit_requests_ = limits.requests_per_minute();
    Configure(requests_, limit_requests_, share_.requests_per_minute(),
              share_.limit_requests_per_minute(), now);
  }
}

void TenantQuota::Configure(TokenBucket& bucket, uint64_t limit, uint64_t share, uint64_t basis,
                            SteadyTime now) {
  if (limit == 0) {
    bucket.Unlimit();
    return;
  }
  if (!options_.control_plane) {
    bucket.SetBudget(static_cast<double>(limit), now, /*fill=*/true);
  } else if (has_share_ && basis > 0) {
    // The share was computed for `basis`; if the table already carries another limit,
    // scale it until the control plane's next split arrives.
    bucket.SetBudget(
        static_cast<double>(share) * static_cast<double>(limit) / static_cast<double>(basis), now,
        /*fill=*/true);
  } else {
    // No share yet (the control plane has not answered since start): the whole limit, so
    // the agent keeps serving without it, but starting empty, so a fleet of agents cannot
    // each spend a full minute's budget at once.
    bucket.SetBudget(static_cast<double>(limit), now, /*fill=*/false);
  }
}

RateLimitHeaders TenantQuota::Headers() const {
  RateLimitHeaders headers;
  headers.active = tokens_.limited() || requests_.limited();
  if (tokens_.limited()) {
    headers.remaining_tokens = static_cast<int64_t>(std::max(0.0, std::floor(tokens_.tokens())));
    headers.limit_tokens = limit_tokens_;
  }
  if (requests_.limited()) {
    headers.remaining_requests =
        static_cast<int64_t>(std::max(0.0, std::floor(requests_.tokens())));
    headers.limit_requests = limit_requests_;
  }
  return headers;
}

std::shared_ptr<TenantQuota> TenantLimiter::Get(absl::string_view tenant) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<TenantQuota>& quota = quotas_[std::string(tenant)];
  if (quota == nullptr) {
    quota = std::make_shared<TenantQuota>(options_);
  }
  return quota;
}

void TenantLimiter::ApplyBudgets(const v1::TenantBudgets& budgets, SteadyTime now) {
  Apply(budgets, now);
  if (!options_.budgets_path.empty()) {
    // At most about once a second (the control plane's pace), on the sync thread.
    if (absl::Status written =
            WriteFileAtomically(options_.budgets_path, budgets.SerializeAsString());
        !written.ok()) {
      spdlog::warn("cannot keep the tenant budget split: {}", std::string(written.message()));
    }
  }
}

absl::Status TenantLimiter::LoadPersistedBudgets(SteadyTime now) {
  if (options_.budgets_path.empty()) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> saved = ReadFile(options_.budgets_path);
  if (!saved.ok()) {
    return absl::IsNotFound(saved.status()) ? absl::OkStatus() : saved.status();
  }
  v1::TenantBudgets budgets;
  if (!budgets.ParseFromString(*saved)) {
    return absl::DataLossError(
        absl::StrCat(options_.budgets_path, " is not a tenant budget split"));
  }
  Apply(budgets, now);
  return absl::OkStatus();
}

void TenantLimiter::Apply(const v1::TenantBudgets& budgets, SteadyTime now) {
  absl::MutexLock lock(&mu_);
  epoch_ = budgets.epoch();
  absl::flat_hash_map<absl::string_view, const v1::TenantBudget*> by_tenant;
  for (const v1::TenantBudget& budget : budgets.budgets()) {
    by_tenant[budget.tenant()] = &budget;
    std::shared_ptr<TenantQuota>& quota = quotas_[budget.tenant()];
    if (quota == nullptr) {
      quota = std::make_shared<TenantQuota>(options_);
    }
  }
  for (auto& [name, quota] : quotas_) {
    auto it = by_tenant.find(name);
    quota->SetShare(it == by_tenant.end() ? nullptr : it->second, now);
  }
}

uint64_t TenantLimiter::budget_epoch() const {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

boost::json::object TenantLimiter::Describe(SteadyTime now) const {
  absl::MutexLock lock(&mu_);
  boost::json::object tenants;
  for (const auto& [name, quota] : quotas_) {
    tenants[name] = quota->Describe(now);
  }
  return boost::json::object{{"budget_epoch", epoch_}, {"tenants", std::move(tenants)}};
}

std::optional<v1::DemandReport> TenantLimiter::TakeDemandReport(SteadyTime now) {
  absl::MutexLock lock(&mu_);
  const SteadyClock::duration window = last_report_ == SteadyTime{}
                                           ? SteadyClock::duration(options_.demand_window)
                                           : now - last_report_;
  last_report_ = now;
  if (quotas_.empty()) {
    return std::nullopt;
  }
  v1::DemandReport report;
  report.set_window_ms(
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(window).count()));
  for (auto& [name, quota] : quotas_) {
    const auto [tokens, requests] = quota->TakeDemand();
    if (tokens == 0 && requests == 0) {
      continue;
    }
    v1::TenantDemand* demand = report.add_tenants();
    demand->set_tenant(name);
    demand->set_tokens(tokens);
    demand->set_requests(requests);
  }
  return report;
}

TenantQuota* TenantQuotaCache::Find(absl::string_view tenant) {
  if (limiter_ == nullptr) {
    return nullptr;
  }
  auto it = quotas_.find(tenant);
  if (it == quotas_.end()) {
    it = quotas_.emplace(std::string(tenant), limiter_->Get(tenant)).first;
  }
  return it->second.get();
}

}  // namespace spillway
