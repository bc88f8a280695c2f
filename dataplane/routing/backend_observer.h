// Who hears what the agent learns about a backend: the sync client forwards it to the
// control plane, which folds it into the health every agent of the stamp receives. Called
// on I/O threads, so implementations must not block.
#pragma once

#include <chrono>
#include <string>

#include "absl/strings/string_view.h"
#include "spillway/v1/routing_table.pb.h"

namespace spillway {

class BackendObserver {
 public:
  virtual ~BackendObserver() = default;
  // The backend answered 429 and is blocked for `retry_after`.
  virtual void OnThrottled(const std::string& backend_id,
                           std::chrono::milliseconds retry_after) = 0;
  // Its circuit opened after failures (state UNHEALTHY, for `open_for`) or closed again
  // after a successful probe (state HEALTHY).
  virtual void OnCircuitChanged(const std::string& backend_id, v1::HealthState state,
                                std::chrono::milliseconds open_for, absl::string_view reason) = 0;
};

}  // namespace spillway
