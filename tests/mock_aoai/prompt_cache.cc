// See prompt_cache.h.
#include "tests/mock_aoai/prompt_cache.h"

namespace spillway::mock {

int64_t PromptCache::CachedTokens(size_t deployment, uint64_t prompt_hash, int64_t prompt_tokens) {
  if (prompt_tokens < kMinTokens) {
    return 0;  // Azure caches only prompts of 1,024 tokens or more
  }
  absl::MutexLock lock(&mu_);
  if (seen_.size() >= kCapacity) {
    seen_.clear();
  }
  const bool seen_before = !seen_.insert({deployment, prompt_hash}).second;
  return seen_before ? prompt_tokens / kBlockTokens * kBlockTokens : 0;
}

void PromptCache::Reset() {
  absl::MutexLock lock(&mu_);
  seen_.clear();
}

}  // namespace spillway::mock
