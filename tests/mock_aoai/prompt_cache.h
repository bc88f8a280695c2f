// Azure's prompt caching, made deterministic: a prompt of at least 1,024 tokens that this
// deployment has seen before reports its tokens, rounded down to 128-token blocks, as cached.
#pragma once

#include <cstdint>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace spillway::mock {

class PromptCache {
 public:
  static constexpr int64_t kMinTokens = 1024;
  static constexpr int64_t kBlockTokens = 128;
  static constexpr size_t kCapacity = 100'000;  // forgets everything when full

  // The cached_tokens to report for this prompt; remembers the prompt for next time.
  int64_t CachedTokens(size_t deployment, uint64_t prompt_hash, int64_t prompt_tokens);
  void Reset();

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::pair<size_t, uint64_t>> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::mock
