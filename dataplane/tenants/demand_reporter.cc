// See demand_reporter.h.
#include "dataplane/tenants/demand_reporter.h"

#include <optional>
#include <utility>

namespace spillway {

DemandReporter::DemandReporter(TenantLimiter& limiter, std::chrono::milliseconds interval,
                               std::function<void(v1::AgentMessage)> send)
    : limiter_(limiter), send_(std::move(send)), thread_(interval, [this] { Report(); }) {}

void DemandReporter::Start() {
  // Starts the first window now rather than at the first request.
  (void)limiter_.TakeDemandReport(SteadyClock::now());
  thread_.Start();
}

void DemandReporter::Report() {
  std::optional<v1::DemandReport> report = limiter_.TakeDemandReport(SteadyClock::now());
  if (report.has_value()) {
    // Sent even when empty: it tells the control plane this agent's demand has gone.
    v1::AgentMessage message;
    *message.mutable_demand() = *std::move(report);
    send_(std::move(message));
  }
}

}  // namespace spillway
