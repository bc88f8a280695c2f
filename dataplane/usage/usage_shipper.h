// Moves usage from the meter to the control plane without losing any: every flush interval
// it seals what the meter collected into sequenced batches, spools them durably, and sends
// them on the AgentSync stream; a batch leaves the spool only when the control plane acks
// it. Each new stream replays the spool in order (the control plane skips batches it has).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "dataplane/usage/usage_meter.h"
#include "dataplane/usage/usage_spool.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

struct UsageShipperOptions {
  std::chrono::milliseconds flush_interval{10000};
  // Batches sent and not yet acked on one stream; a long outage's backlog drains at this pace.
  int max_in_flight = 16;
  // A batch unacked this long is sent again (the control plane may have failed to store it).
  std::chrono::milliseconds resend_after{30000};
  std::size_t max_aggregates_per_batch = 2000;  // keeps messages far below gRPC's 4 MiB
  uint64_t spool_warn_bytes = 256ull << 20;     // logged, never dropped
  // Sees each flush's aggregates before they are spooled (the agent's /metrics counts them
  // per tenant); called under the shipper's lock, so it must not call back into it.
  std::function<void(const std::vector<v1::UsageAggregate>&)> on_collected;
};

class UsageShipper {
 public:
  using SendFn = std::function<void(v1::AgentMessage)>;

  UsageShipper(UsageShipperOptions options, UsageMeter& meter, UsageSpool spool,
               std::string agent_id, SendFn send);
  ~UsageShipper();

  void Start();
  // Seals and spools what the meter still holds; with a stream up, waits up to `wait` for
  // the control plane to ack everything. Call after the I/O threads have stopped.
  void Stop(std::chrono::milliseconds wait);
  // Seals and spools now (and sends, with a stream up).
  void Flush();

  // From the sync client's thread.
  void OnStreamStarted();
  void OnStreamEnded();
  void OnUsageAck(uint64_t sequence);

  std::size_t spooled_batches();
  uint64_t spooled_bytes();

 private:
  void Run();
  void SealLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendLocked(uint64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResendStaleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const UsageShipperOptions options_;
  UsageMeter& meter_;
  const std::string agent_id_;
  const SendFn send_;

  std::mutex mu_;
  std::condition_variable wake_;
  UsageSpool spool_ ABSL_GUARDED_BY(mu_);
  // Sealed, but the spool write failed.
  std::vector<v1::UsageAggregate> unspooled_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_to_send_ ABSL_GUARDED_BY(mu_) = 0;  // lowest not yet sent on this stream
  std::map<uint64_t, std::chrono::steady_clock::time_point> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t warned_at_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace spillway
