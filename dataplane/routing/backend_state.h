// Mutable per-backend state (circuit, in-flight count, recent load) that outlives routing
// table versions: a new snapshot picks up the state of each backend id it keeps.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/routing/circuit_breaker.h"

namespace spillway {

class EntraTokenSource;
namespace v1 {
class InstanceAuth;
}

// Tokens charged to a backend over the last `kSlots` seconds, lock-free: one slot per
// second, each tagged with the second it counts so stale slots read as zero.
class LoadWindow {
 public:
  static constexpr int kSlots = 10;

  void Add(SteadyTime now, int64_t tokens);
  int64_t Sum(SteadyTime now) const;

 private:
  struct Slot {
    std::atomic<int64_t> second{-1};
    std::atomic<int64_t> tokens{0};
  };
  static int64_t SecondOf(SteadyTime t);
  std::array<Slot, kSlots> slots_;
};

struct BackendState {
  explicit BackendState(const CircuitBreakerOptions& options) : breaker(options) {}
  CircuitBreaker breaker;
  std::atomic<int> in_flight{0};
  LoadWindow load;
  // For /metrics, since start (relaxed atomics: no lock, no allocation on the request path).
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> throttled{0};  // 429 answers
};

// Hands out the one BackendState of each backend id.
class BackendStateRegistry {
 public:
  explicit BackendStateRegistry(const CircuitBreakerOptions& options) : options_(options) {}
  std::shared_ptr<BackendState> Get(const std::string& backend_id);

  // Entra ID token sources outlive tables for the same reason, so snapshots find them
  // through this (auth/ provides it: routing does not include auth). Set once at start;
  // unset, backends with Entra ID auth are unusable.
  using EntraSourceLookup = std::function<absl::StatusOr<std::shared_ptr<EntraTokenSource>>(
      const v1::InstanceAuth& auth)>;
  void set_entra_lookup(EntraSourceLookup lookup) { entra_lookup_ = std::move(lookup); }
  const EntraSourceLookup& entra_lookup() const { return entra_lookup_; }

 private:
  const CircuitBreakerOptions options_;
  EntraSourceLookup entra_lookup_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<BackendState>> states_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway
