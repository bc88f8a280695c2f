// Who hears about a backend's 429: the sync client forwards it to the control plane so
// other agents avoid the backend too. Called on I/O threads, so it must not block.
#pragma once

#include <chrono>
#include <string>

namespace spillway {

class ThrottleObserver {
 public:
  virtual ~ThrottleObserver() = default;
  virtual void OnThrottled(const std::string& backend_id,
                           std::chrono::milliseconds retry_after) = 0;
};

}  // namespace spillway
