// Tells the control plane, every few seconds, how much each tenant asked of this agent, so it
// can split the tenant's stamp-wide limits by demand. Runs on its own thread; the request
// path only adds to per-tenant counters.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "dataplane/tenants/tenant_limiter.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

class DemandReporter {
 public:
  // `send` hands the report to the AgentSync stream (and drops it while disconnected).
  DemandReporter(TenantLimiter& limiter, std::chrono::milliseconds interval,
                 std::function<void(v1::AgentMessage)> send);
  ~DemandReporter();

  void Start();
  void Stop();

 private:
  void Run();

  TenantLimiter& limiter_;
  const std::chrono::milliseconds interval_;
  const std::function<void(v1::AgentMessage)> send_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace spillway
