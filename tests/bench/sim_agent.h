// Simulated agents for the control-plane benchmark: real AgentSync streams over their own
// gRPC connections, speaking the agent's hello/ack protocol, and a board of what they got.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "spillway/v1/agent_sync.grpc.pb.h"  // also the protobuf SerializationTraits

namespace spillway::bench {

// The first share of a TenantBudgets message: one tenant is enough to tell whether the
// shares handed out add up to its limit.
struct BudgetSample {
  uint64_t epoch = 0;
  std::string tenant;
  uint64_t tokens_per_minute = 0;
  uint64_t limit_tokens_per_minute = 0;
};

// What the simulated agents have acknowledged and received, shared by all of them. Streams
// are numbered per agent from 0, so a reconnect storm can wait for the streams it opened.
class AckBoard {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AckBoard(int agents)
      : acked_(agents, 0),
        acked_at_(agents),
        table_bytes_(agents, 0),
        stream_(agents, -1),
        budgets_stream_(agents, -1),
        budgets_at_(agents),
        budgets_(agents) {}

  void Opened(int agent, int stream);
  void Acked(int agent, uint64_t version, std::size_t table_bytes);
  void Budgets(int agent, int stream, BudgetSample sample);
  void Failed(int agent, std::string reason);
  // When the last agent acked `version` (all have); an error if one failed or time ran out.
  absl::StatusOr<Clock::time_point> WaitForAll(uint64_t version, absl::Duration timeout);
  // When the last agent was settled on stream `stream`: tenant budgets received on it, and a
  // table of `version` or newer applied (kept from before, or sent on it and acked).
  absl::StatusOr<Clock::time_point> WaitForSettled(int stream, uint64_t version,
                                                   absl::Duration timeout);
  // Waits until no budgets arrived for `quiet`; returns when the last one did.
  absl::StatusOr<Clock::time_point> WaitForBudgetsQuiet(absl::Duration quiet,
                                                        absl::Duration timeout);
  std::size_t MaxTableBytes() const;
  // Budget messages received so far, by all agents together.
  uint64_t BudgetMessages() const;

  // Per tenant sampled, the shares agents hold now summed, over its limit; the largest
  // and smallest such ratio (1 when the split hands out exactly the limit).
  struct Overcommit {
    double max = 0;
    double min = 0;
    int tenants = 0;
  };
  Overcommit BudgetOvercommit() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<uint64_t> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<Clock::time_point> acked_at_ ABSL_GUARDED_BY(mu_);
  std::vector<std::size_t> table_bytes_ ABSL_GUARDED_BY(mu_);
  std::vector<int> stream_ ABSL_GUARDED_BY(mu_);          // the latest opened
  std::vector<int> budgets_stream_ ABSL_GUARDED_BY(mu_);  // where budgets last came
  std::vector<Clock::time_point> budgets_at_ ABSL_GUARDED_BY(mu_);
  std::vector<BudgetSample> budgets_ ABSL_GUARDED_BY(mu_);
  Clock::time_point last_budgets_ ABSL_GUARDED_BY(mu_);
  uint64_t budget_messages_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
};

// One agent's end of AgentSync, speaking dataplane/sync/sync_client.cc's protocol: a hello with
// its id, region and applied version, then an ack (or a nack with the reason) for every
// table. It does not build a snapshot or persist the table: the agent's own cost is not the
// control plane's. Callback API, so 1,000 streams need no thread each; messages down arrive
// as bytes, of which only a table's version and region and a budget's first share are read
// (see sim_agent.cc). Connect, Drop and Stop come from one thread.
class SimAgent {
 public:
  // `index` names it ("bench-agent-007") and is its slot on `board`.
  SimAgent(int index, std::string region, AckBoard& board);
  ~SimAgent();  // Stop()
  SimAgent(const SimAgent&) = delete;
  SimAgent& operator=(const SimAgent&) = delete;

  std::string id() const;
  // Opens the next stream, on a new connection to `target`, and says hello with the version
  // it applied last, as a reconnecting agent does; 0 with `forget_table`, as a new one does.
  void Connect(const std::string& target, bool forget_table = false);
  // Cancels the open stream without waiting for gRPC: a whole fleet can drop at once.
  void Drop();
  // Waits until gRPC is done with the streams dropped so far, and frees them.
  void ReapDropped();
  // Drop(), then ReapDropped().
  void Stop();

 private:
  class Stream;
  friend class Stream;

  const int index_;
  const std::string region_;
  AckBoard& board_;
  std::atomic<uint64_t> applied_version_{0};  // written by the stream's ack
  int streams_ = 0;
  std::unique_ptr<Stream> stream_;
  std::vector<std::unique_ptr<Stream>> dropped_;
};

}  // namespace spillway::bench
