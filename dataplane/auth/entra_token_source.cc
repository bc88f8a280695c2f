// See entra_token_source.h. State changes happen under mu_ on the token thread (fetch
// results) or on the slow path of a request; the fast path reads atomics only.
#include "dataplane/auth/entra_token_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "dataplane/http/no_throw.h"

namespace spillway {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using std::chrono::milliseconds;

int64_t MillisUntil(SteadyTime then, SteadyTime now) {
  return std::max<int64_t>(0, std::chrono::ceil<milliseconds>(then - now).count());
}

}  // namespace

std::string EntraCredential::Key() const {
  if (kind == Kind::kManagedIdentity) {
    return absl::StrCat("mi|", client_id);
  }
  return absl::StrCat("cc|", tenant_id, "|", client_id, "|", secret_env.empty() ? "file:" : "env:",
                      secret_env.empty() ? secret_file : secret_env);
}

std::string EntraCredential::Describe() const {
  if (kind == Kind::kManagedIdentity) {
    return client_id.empty() ? std::string("managed identity (system-assigned)")
                             : absl::StrCat("managed identity (client id ", client_id, ")");
  }
  return absl::StrCat("client credentials (tenant ", tenant_id, ", client ", client_id, ")");
}

TokenSchedule ScheduleToken(SteadyTime requested_at, std::chrono::seconds lifetime) {
  const auto life = std::chrono::duration_cast<milliseconds>(lifetime);
  const milliseconds refresh_margin = std::min<milliseconds>(std::chrono::minutes(5), life / 10);
  const milliseconds expiry_margin = std::min<milliseconds>(std::chrono::seconds(30), life / 20);
  return TokenSchedule{requested_at + life - refresh_margin, requested_at + life - expiry_margin};
}

milliseconds TokenFetchBackoff(int failures) {
  const int doublings = std::clamp(failures - 1, 0, 5);
  return std::min<milliseconds>(milliseconds(int64_t{1000} << doublings), std::chrono::seconds(30));
}

EntraTokenSource::EntraTokenSource(std::string description, asio::any_io_executor executor,
                                   TokenFetcher fetcher, milliseconds timeout)
    : description_(std::move(description)),
      executor_(executor),
      fetcher_(std::move(fetcher)),
      timeout_(timeout),
      jitter_(static_cast<uint32_t>(std::hash<std::string>()(description_) ^
                                    static_cast<uint64_t>(Ticks(SteadyClock::now())))),
      wakeup_(executor) {}

EntraTokenSource::~EntraTokenSource() = default;

void EntraTokenSource::Prefetch() { StartFetch(); }

bool EntraTokenSource::StartFetch() {
  bool idle = false;
  if (!fetching_.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) {
    return false;
  }
  asio::co_spawn(executor_, RunFetch(shared_from_this()), asio::detached);
  return true;
}

asio::awaitable<void> EntraTokenSource::RunFetch(std::shared_ptr<EntraTokenSource> self) {
  self->used_.store(false, std::memory_order_relaxed);
  const SteadyTime requested_at = SteadyClock::now();
  absl::StatusOr<FetchedToken> result = co_await self->fetcher_();
  self->OnFetched(std::move(result), requested_at);
}

void EntraTokenSource::SetCredential(UpstreamRequest& request, const Token& token) {
  // Replaces the previous attempt's credential (another backend's api-key, say).
  request.SetCredential("Authorization", token.authorization);
}

bool EntraTokenSource::Authorize(UpstreamRequest& request, SteadyTime now) {
  const Token* token = current_.load(std::memory_order_acquire);
  if (token == nullptr || now >= token->schedule.usable_until) {
    return false;
  }
  if (!used_.load(std::memory_order_relaxed)) {
    used_.store(true, std::memory_order_relaxed);
  }
  if (now >= token->schedule.refresh_at &&
      Ticks(now) >= retry_at_ticks_.load(std::memory_order_acquire) &&
      !fetching_.load(std::memory_order_acquire)) {
    StartFetch();  // the current token serves until the new one arrives
  }
  SetCredential(request, *token);
  return true;
}

absl::Status EntraTokenSource::NoTokenError(SteadyTime now) const {
  if (fetching_.load(std::memory_order_acquire)) {
    return absl::DeadlineExceededError(absl::StrCat("no Microsoft Entra ID token for ",
                                                    description_,
                                                    " yet: the token endpoint has not answered"));
  }
  const int64_t retry_at = retry_at_ticks_.load(std::memory_order_acquire);
  std::string retry;
  if (retry_at > Ticks(now)) {
    retry = absl::StrCat(" (next attempt in ",
                         MillisUntil(SteadyTime(SteadyClock::duration(retry_at)), now), " ms)");
  }
  return absl::UnavailableError(absl::StrCat("no Microsoft Entra ID token for ", description_, ": ",
                                             last_error_.empty() ? "none yet" : last_error_,
                                             retry));
}

asio::awaitable<absl::Status> EntraTokenSource::AwaitAndAuthorize(UpstreamRequest& request,
                                                                  SteadyTime deadline) {
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  std::shared_ptr<Waiter> waiter;
  bool start_fetch = false;
  {
    absl::MutexLock lock(&mu_);
    const SteadyTime now = SteadyClock::now();
    used_.store(true, std::memory_order_relaxed);
    const Token* token = current_.load(std::memory_order_acquire);
    if (token != nullptr && now < token->schedule.usable_until) {
      SetCredential(request, *token);
      co_return absl::OkStatus();
    }
    if (!fetching_.load(std::memory_order_acquire)) {
      if (Ticks(now) < retry_at_ticks_.load(std::memory_order_acquire)) {
        co_return NoTokenError(now);  // backing off: fail fast, the next backend may serve
      }
      start_fetch = true;
    }
    // Registered under the lock OnFetched takes, so its wake-up cannot be missed.
    waiter = std::make_shared<Waiter>(executor);
    waiter->timer.expires_at(std::min(deadline, now + timeout_ + milliseconds(100)));
    // Requests that timed out while a hung fetch is in flight leave expired entries behind.
    std::erase_if(waiters_, [](const std::weak_ptr<Waiter>& entry) { return entry.expired(); });
    waiters_.push_back(waiter);
  }
  if (start_fetch) {
    StartFetch();  // outside the lock: a fetch that fails at once reports under it
  }
  // Woken early (a token arrived) or at the deadline: either way the state below decides.
  co_await waiter->timer.async_wait(kNoThrow);
  absl::MutexLock lock(&mu_);
  const SteadyTime now = SteadyClock::now();
  const Token* token = current_.load(std::memory_order_acquire);
  if (token != nullptr && now < token->schedule.usable_until) {
    SetCredential(request, *token);
    co_return absl::OkStatus();
  }
  co_return NoTokenError(now);
}

void EntraTokenSource::OnFetched(absl::StatusOr<FetchedToken> result, SteadyTime requested_at) {
  std::vector<std::weak_ptr<Waiter>> waiters;
  SteadyTime wake_at;
  {
    absl::MutexLock lock(&mu_);
    const SteadyTime now = SteadyClock::now();
    if (result.ok() && result->lifetime.count() > 0) {
      auto token = std::make_unique<Token>();
      token->authorization = absl::StrCat("Bearer ", result->access_token);
      token->schedule = ScheduleToken(requested_at, result->lifetime);
      wake_at = token->schedule.refresh_at;
      std::erase_if(retired_, [&](const auto& entry) { return now - entry.second > kRetireGrace; });
      if (owned_ != nullptr) {
        retired_.emplace_back(std::move(owned_), now);
      }
      owned_ = std::move(token);
      current_.store(owned_.get(), std::memory_order_release);
      retry_at_ticks_.store(0, std::memory_order_release);
      consecutive_failures_ = 0;
      last_error_.clear();
      ++fetches_;
      spdlog::info(
          "Microsoft Entra ID token for {} obtained: valid for {} s, refreshed in {:.1f} s",
          description_, result->lifetime.count(),
          MillisUntil(owned_->schedule.refresh_at, now) / 1000.0);
    } else {
      last_error_ = result.ok() ? std::string("the token endpoint returned an expired token")
                                : std::string(result.status().message());
      ++failures_;
      ++consecutive_failures_;
      const milliseconds backoff = TokenFetchBackoff(consecutive_failures_);
      const milliseconds wait(
          std::uniform_int_distribution<int64_t>(backoff.count() / 2, backoff.count())(jitter_));
      wake_at = now + wait;
      retry_at_ticks_.store(Ticks(wake_at), std::memory_order_release);
      spdlog::warn("Microsoft Entra ID token for {} failed: {}; retrying in {} ms", description_,
                   last_error_, wait.count());
    }
    fetching_.store(false, std::memory_order_release);
    waiters.swap(waiters_);
  }
  // Each waiter's timer lives on its own I/O thread: cancel it there. One whose request has
  // gone needs no wake-up.
  for (const std::weak_ptr<Waiter>& entry : waiters) {
    std::shared_ptr<Waiter> waiter = entry.lock();
    if (waiter == nullptr) {
      continue;
    }
    const asio::any_io_executor waiter_executor = waiter->timer.get_executor();
    asio::post(waiter_executor, [waiter = std::move(waiter)] { waiter->timer.cancel(); });
  }
  wakeup_.expires_at(wake_at);
  wakeup_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    if (std::shared_ptr<EntraTokenSource> self = weak.lock()) {
      self->OnWakeup();
    }
  });
}

void EntraTokenSource::OnWakeup() {
  // Refresh (or retry) only a credential some request used since the last fetch; an idle one
  // fetches again when a request next needs it.
  if (used_.load(std::memory_order_relaxed)) {
    StartFetch();
  }
}

boost::json::object EntraTokenSource::StatusJson(SteadyTime now) const {
  absl::MutexLock lock(&mu_);
  const Token* token = current_.load(std::memory_order_acquire);
  const bool valid = token != nullptr && now < token->schedule.usable_until;
  const char* state = "none";
  if (valid) {
    state = "valid";
  } else if (fetching_.load(std::memory_order_acquire)) {
    state = "fetching";
  } else if (!last_error_.empty()) {
    state = "failing";
  }
  boost::json::object status;
  status["credential"] = description_;
  status["state"] = state;
  status["usable_for_ms"] = valid ? MillisUntil(token->schedule.usable_until, now) : 0;
  status["fetches"] = fetches_;
  status["failures"] = failures_;
  status["last_error"] = last_error_;
  return status;
}

}  // namespace spillway
