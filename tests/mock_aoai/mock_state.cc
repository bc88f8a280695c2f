// See mock_state.h.
#include "tests/mock_aoai/mock_state.h"

namespace spillway::mock {

MockState::MockState(MockConfig config, Clock clock)
    : config_(std::move(config)),
      clock_(std::move(clock)),
      faults_(clock_),
      responses_(config_.responses_capacity, config_.responses_byte_capacity, clock_),
      conversations_(config_.conversations_capacity, config_.conversation_max_items,
                     config_.conversations_byte_capacity),
      files_apis_(config_),
      assistants_(config_.assistants_capacity, config_.conversations_byte_capacity),
      threads_(config_.threads_capacity, config_.thread_max_messages,
               config_.conversations_byte_capacity),
      tokens_(config_.entra, clock_) {
  deployments_.reserve(config_.deployments.size());
  for (const DeploymentSpec& spec : config_.deployments) {
    LimitSpec limits;
    limits.tpm = spec.tpm;
    limits.rpm = spec.rpm;
    limits.enforce_rpm = spec.ptu == 0 || spec.rpm_given;
    limits.ptu = spec.ptu;
    limits.tokens_per_ptu_minute = config_.tokens_per_ptu_minute;
    limits.window = config_.window;
    const size_t index = deployments_.size();
    deployments_.push_back({spec, index, std::make_unique<RateLimiter>(limits, clock_)});
    by_name_.emplace(spec.name, index);
  }
  for (const FaultSpec& fault : config_.initial_faults) {
    faults_.Add(fault);
  }
}

Deployment* MockState::Find(absl::string_view name) {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &deployments_[it->second];
}

void MockState::Reset() {
  for (Deployment& deployment : deployments_) {
    deployment.limiter->Reset();
  }
  faults_.Clear();
  stats_.Reset();
  prompt_cache_.Reset();
  responses_.Clear();
  conversations_.Clear();
  files_apis_.Clear();
  assistants_.Clear();
  threads_.Clear();
}

}  // namespace spillway::mock
