// A Microsoft Entra ID access token for one credential, kept fresh for every backend that uses
// it: fetched once, cached, refreshed before it expires with one fetch at a time, retried with
// backoff when the endpoint fails. Requests read the cached token without a lock; only one
// that finds no usable token waits, and then on a timer, never blocking its thread.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/http/upstream_request.h"
#include "dataplane/routing/circuit_breaker.h"

namespace spillway {

// What identifies a token: backends that share it share one source. Holds where a secret is,
// never the secret.
struct EntraCredential {
  enum class Kind { kManagedIdentity, kClientCredentials };
  Kind kind = Kind::kManagedIdentity;
  std::string client_id;    // user-assigned managed identity (empty: system-assigned) or app id
  std::string tenant_id;    // client credentials
  std::string secret_env;   // client credentials: the secret's environment variable...
  std::string secret_file;  // ...or file

  std::string Key() const;
  // For logs, /status and errors: "managed identity (client id X)", "client credentials
  // (tenant T, client C)".
  std::string Describe() const;
};

// When a token obtained at `requested_at` (the moment it was asked for, so clock skew and
// the fetch's own latency only make us earlier) with `lifetime` is refreshed and until when
// it is sent. Refresh when less than 5 minutes or 10% of the lifetime remains, whichever
// is smaller (so 1-hour tokens refresh at 55 minutes and 4-second test tokens at 3.6 s);
// stop sending it when less than 30 s or 5% remains, so it never expires in transit.
struct TokenSchedule {
  SteadyTime refresh_at;
  SteadyTime usable_until;
};
TokenSchedule ScheduleToken(SteadyTime requested_at, std::chrono::seconds lifetime);

// Wait after the `failures`-th consecutive failed fetch (1-based): 1 s doubling to 30 s. The
// source waits a random time between half and all of it, so agents sharing a tenant's token
// endpoint do not retry in lockstep.
std::chrono::milliseconds TokenFetchBackoff(int failures);

struct FetchedToken {
  std::string access_token;
  std::chrono::seconds lifetime{0};
};

// One token request, run on the source's executor; errors never contain a secret or a token.
using TokenFetcher = std::function<boost::asio::awaitable<absl::StatusOr<FetchedToken>>()>;

class EntraTokenSource : public std::enable_shared_from_this<EntraTokenSource> {
 public:
  // `executor` runs fetches and the refresh timer (the registry's token thread); `timeout`
  // bounds one fetch, and so how long a request waits for one.
  EntraTokenSource(std::string description, boost::asio::any_io_executor executor,
                   TokenFetcher fetcher, std::chrono::milliseconds timeout);
  ~EntraTokenSource();

  // Starts the first fetch, so the token is usually there before the first request.
  void Prefetch();

  // The request path: with a usable token cached, makes "Authorization: Bearer ..." the
  // request's credential (in place of any api-key) and returns true, lock-free; starts a
  // background refresh when one is due.
  bool Authorize(UpstreamRequest& request, SteadyTime now);

  // When Authorize returned false: waits for the fetch in flight (starting one unless the
  // source is backing off after a failure) until `deadline` at the latest, then authorizes.
  // The error says why there is no token. Must run on a single-threaded io_context (each
  // agent I/O thread has one): the wake-up is posted to it.
  boost::asio::awaitable<absl::Status> AwaitAndAuthorize(UpstreamRequest& request,
                                                         SteadyTime deadline);

  // {"credential", "state": valid|fetching|failing|none, "usable_for_ms" (until it is no
  //  longer sent), "fetches", "failures", "last_error"} for /status; never the token.
  boost::json::object StatusJson(SteadyTime now) const;
  const std::string& description() const { return description_; }

 private:
  struct Token {
    std::string authorization;  // "Bearer <token>"
    TokenSchedule schedule;
  };
  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
  };
  // A replaced token stays readable this long: a reader copies it within nanoseconds of
  // loading the pointer, so this is a generous grace period, not a lock.
  static constexpr std::chrono::seconds kRetireGrace{60};

  static int64_t Ticks(SteadyTime t) { return t.time_since_epoch().count(); }
  static boost::asio::awaitable<void> RunFetch(std::shared_ptr<EntraTokenSource> self);
  // Claims the single fetch slot (false when a fetch is in flight) and starts it.
  bool StartFetch();
  void OnFetched(absl::StatusOr<FetchedToken> result, SteadyTime requested_at);
  void OnWakeup();
  static void SetCredential(UpstreamRequest& request, const Token& token);
  absl::Status NoTokenError(SteadyTime now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string description_;
  boost::asio::any_io_executor executor_;
  const TokenFetcher fetcher_;
  const std::chrono::milliseconds timeout_;

  std::atomic<const Token*> current_{nullptr};
  std::atomic<bool> fetching_{false};
  // A request wanted a token since the last fetch started: keeps refreshes and retries going
  // for credentials in use, and lets unused ones go quiet.
  std::atomic<bool> used_{false};
  // No fetch starts before this tick: the end of a failure backoff (0: none).
  std::atomic<int64_t> retry_at_ticks_{0};

  mutable absl::Mutex mu_;
  std::unique_ptr<const Token> owned_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::unique_ptr<const Token>, SteadyTime>> retired_ ABSL_GUARDED_BY(mu_);
  // Weak: each waiter is owned by its request, whose timer belongs to an I/O thread's
  // io_context. A request that gave up (or a loop destroyed at shutdown) must not leave its
  // timer here for a fetch that may outlive that io_context.
  std::vector<std::weak_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fetches_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::minstd_rand jitter_ ABSL_GUARDED_BY(mu_);

  boost::asio::steady_timer wakeup_;  // refresh or retry; touched on the executor only
};

}  // namespace spillway
