// A thread that calls a function at a fixed interval until stopped: the agents' reports to
// the control plane (demand, traffic) and the control plane's timed work (drills).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace spillway {

class PeriodicThread {
 public:
  // `tick` runs on the thread, first one interval after Start.
  PeriodicThread(std::chrono::milliseconds interval, std::function<void()> tick);
  ~PeriodicThread();  // stops

  void Start();
  // Returns once a tick in progress has finished; no tick runs afterwards.
  void Stop();

 private:
  const std::chrono::milliseconds interval_;
  const std::function<void()> tick_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace spillway
