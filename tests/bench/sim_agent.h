// Simulated agents for the control-plane benchmark: real AgentSync streams over their own
// gRPC connections, speaking the agent's hello/ack protocol, and a board of their acks.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

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

// What the simulated agents have acknowledged, shared by all of them.
class AckBoard {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AckBoard(int agents) : acked_(agents, 0), acked_at_(agents), table_bytes_(agents, 0) {}

  void Acked(int agent, uint64_t version, std::size_t table_bytes);
  void Failed(int agent, std::string reason);
  // When the last agent acked `version` (all have); an error if one failed or time ran out.
  absl::StatusOr<Clock::time_point> WaitForAll(uint64_t version, absl::Duration timeout);
  std::size_t MaxTableBytes() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<uint64_t> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<Clock::time_point> acked_at_ ABSL_GUARDED_BY(mu_);
  std::vector<std::size_t> table_bytes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
};

// One agent's end of AgentSync, speaking dataplane/sync/sync_client.cc's protocol: a hello with
// its id, region and applied version, then an ack (or a nack with the reason) for every
// table. It does not build a snapshot or persist the table: the agent's own cost is not the
// control plane's. Callback API, so 100 streams need no thread each; messages down arrive
// as bytes, of which only the table's version and region are read (see sim_agent.cc).
class SimAgent final : public grpc::ClientBidiReactor<v1::AgentMessage, grpc::ByteBuffer> {
 public:
  // `index` names it ("bench-agent-007") and is its slot on `board`.
  SimAgent(int index, std::string region, const std::string& target, AckBoard& board);

  std::string id() const;
  // Opens the stream and says hello.
  void Start();
  // Cancels the stream and waits until gRPC is done with this reactor.
  void Stop();

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  using Stub = grpc::TemplatedGenericStub<v1::AgentMessage, grpc::ByteBuffer>;

  // One write in flight at a time (gRPC's rule); the rest wait in order.
  void Write(v1::AgentMessage message);

  const int index_;
  const std::string region_;
  AckBoard& board_;
  // gRPC keeps a pointer to the method name for the call's lifetime.
  const std::string method_ = "/spillway.v1.AgentSync/Sync";
  std::unique_ptr<Stub> stub_;
  grpc::ClientContext context_;
  grpc::ByteBuffer in_;
  std::size_t table_bytes_ = 0;  // reads never overlap

  absl::Mutex mu_;
  std::deque<v1::AgentMessage> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace spillway::bench
