// See demand_reporter.h.
#include "dataplane/tenants/demand_reporter.h"

#include <optional>
#include <utility>

namespace spillway {

DemandReporter::DemandReporter(TenantLimiter& limiter, std::chrono::milliseconds interval,
                               std::function<void(v1::AgentMessage)> send)
    : limiter_(limiter), interval_(interval), send_(std::move(send)) {}

DemandReporter::~DemandReporter() { Stop(); }

void DemandReporter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void DemandReporter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void DemandReporter::Run() {
  // Starts the first window now rather than at the first request.
  (void)limiter_.TakeDemandReport(SteadyClock::now());
  auto next = SteadyClock::now() + interval_;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (wake_.wait_until(lock, next, [this] { return stopping_; })) {
        return;
      }
    }
    next += interval_;
    std::optional<v1::DemandReport> report = limiter_.TakeDemandReport(SteadyClock::now());
    if (report.has_value()) {
      // Sent even when empty: it tells the control plane this agent's demand has gone.
      v1::AgentMessage message;
      *message.mutable_demand() = *std::move(report);
      send_(std::move(message));
    }
  }
}

}  // namespace spillway
