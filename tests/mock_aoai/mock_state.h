// State shared by all of a mock process's threads. The deployment set is fixed at start-up, so
// lookups take no lock; limiters, faults, stats and the prompt cache lock on their own.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "tests/mock_aoai/assistants_store.h"
#include "tests/mock_aoai/config.h"
#include "tests/mock_aoai/conversations_store.h"
#include "tests/mock_aoai/faults.h"
#include "tests/mock_aoai/files_store.h"
#include "tests/mock_aoai/prompt_cache.h"
#include "tests/mock_aoai/rate_limiter.h"
#include "tests/mock_aoai/responses_store.h"
#include "tests/mock_aoai/stats.h"
#include "tests/mock_aoai/token_issuer.h"

namespace spillway::mock {

struct Deployment {
  DeploymentSpec spec;
  size_t index = 0;
  std::unique_ptr<RateLimiter> limiter;
};

class MockState {
 public:
  MockState(MockConfig config, Clock clock);

  const MockConfig& config() const { return config_; }
  const Clock& clock() const { return clock_; }
  // Null when the deployment does not exist.
  Deployment* Find(absl::string_view name);
  FaultTable& faults() { return faults_; }
  Stats& stats() { return stats_; }
  PromptCache& prompt_cache() { return prompt_cache_; }
  ResponsesStore& responses() { return responses_; }
  ConversationsStore& conversations() { return conversations_; }
  FilesApiState& files_apis() { return files_apis_; }
  AssistantsStore& assistants() { return assistants_; }
  ThreadsStore& threads() { return threads_; }
  const TokenIssuer& tokens() const { return tokens_; }

  // POST /mock/reset: stats, buckets, faults, the prompt cache, the stored responses, the
  // conversations, and the files, batches, vector stores and upload log back to their start.
  void Reset();

 private:
  const MockConfig config_;
  const Clock clock_;
  std::vector<Deployment> deployments_;
  absl::flat_hash_map<std::string, size_t> by_name_;
  FaultTable faults_;
  Stats stats_;
  PromptCache prompt_cache_;
  ResponsesStore responses_;
  ConversationsStore conversations_;
  FilesApiState files_apis_;
  AssistantsStore assistants_;
  ThreadsStore threads_;
  TokenIssuer tokens_;
};

}  // namespace spillway::mock
