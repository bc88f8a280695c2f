// See periodic_thread.h.
#include "common/periodic_thread.h"

#include <utility>

namespace spillway {

PeriodicThread::PeriodicThread(std::chrono::milliseconds interval, std::function<void()> tick)
    : interval_(interval), tick_(std::move(tick)) {}

PeriodicThread::~PeriodicThread() { Stop(); }

void PeriodicThread::Start() {
  thread_ = std::thread([this] {
    // Steady deadlines: a slow tick shortens the next wait instead of drifting.
    auto next = std::chrono::steady_clock::now() + interval_;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (wake_.wait_until(lock, next, [this] { return stopping_; })) {
          return;
        }
      }
      next += interval_;
      tick_();
    }
  });
}

void PeriodicThread::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace spillway
