// Tells the control plane, every few seconds, how much each tenant asked of this agent, so it
// can split the tenant's stamp-wide limits by demand. Runs on its own thread; the request
// path only adds to per-tenant counters.
#pragma once

#include <chrono>
#include <functional>

#include "common/periodic_thread.h"
#include "dataplane/tenants/tenant_limiter.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

class DemandReporter {
 public:
  // `send` hands the report to the AgentSync stream (and drops it while disconnected).
  DemandReporter(TenantLimiter& limiter, std::chrono::milliseconds interval,
                 std::function<void(v1::AgentMessage)> send);

  void Start();
  void Stop() { thread_.Stop(); }

 private:
  void Report();

  TenantLimiter& limiter_;
  const std::function<void(v1::AgentMessage)> send_;
  PeriodicThread thread_;  // last: stopped (by its destructor) before the members it uses go
};

}  // namespace spillway
