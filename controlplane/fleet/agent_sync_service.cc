// See agent_sync_service.h. One read and one write in flight at a time; writes queue in
// the reactor. The reactor deletes itself in OnDone, after leaving the Fleet.
#include "controlplane/fleet/agent_sync_service.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/wall_clock.h"

namespace spillway {
namespace {

class SyncReactor final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>,
                          public AgentStream {
 public:
  SyncReactor(Fleet& fleet, TopologyStore& store, grpc::CallbackServerContext* context,
              const grpc::Status& auth)
      : fleet_(fleet), store_(store), peer_(context->peer()) {
    if (!auth.ok()) {
      spdlog::warn("agent stream from {} refused: {}", peer_, auth.error_message());
      Finish(auth);
      return;
    }
    StartRead(&in_);
  }

  void Send(std::shared_ptr<const v1::ControlMessage> message) override {
    absl::MutexLock lock(&mu_);
    if (done_) {
      return;
    }
    queue_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(queue_.front().get());
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    if (!ok) {
      // The stream is going away: OnReadDone(false) finishes it, unless it already tried.
      writing_ = false;
      queue_.clear();
      if (finishing_) {
        Finish(grpc::Status::OK);
      }
      return;
    }
    if (queue_.empty()) {
      writing_ = false;
      if (finishing_) {
        Finish(grpc::Status::OK);
      }
      return;
    }
    StartWrite(queue_.front().get());
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      EndStream(grpc::Status::OK);
      return;
    }
    grpc::Status status = Handle(in_);
    if (!status.ok()) {
      EndStream(status);
      return;
    }
    StartRead(&in_);
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    if (registered_) {
      fleet_.Unregister(this);
      v1::AgentInfo info = info_;
      info.set_connected(false);
      info.set_last_seen_unix_ms(UnixMillisNow());
      (void)store_.RecordAgent(info);
      spdlog::info("agent {} ({}) disconnected", info_.agent_id(), info_.region());
    }
    delete this;
  }

 private:
  grpc::Status Handle(const v1::AgentMessage& message) {
    if (!registered_ && message.message_case() != v1::AgentMessage::kHello) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "the first message on AgentSync must be a hello");
    }
    switch (message.message_case()) {
      case v1::AgentMessage::kHello:
        return OnHello(message.hello());
      case v1::AgentMessage::kAck:
        info_.set_acked_version(message.ack().version());
        info_.clear_last_nack_reason();
        return Record();
      case v1::AgentMessage::kNack:
        spdlog::warn("agent {} refused version {}: {}", info_.agent_id(), message.nack().version(),
                     message.nack().reason());
        info_.set_last_nack_reason(message.nack().reason());
        return Record();
      case v1::AgentMessage::kThrottle:
        for (const v1::ThrottleEvent& event : message.throttle().events()) {
          fleet_.ReportThrottle(event, info_.agent_id());
        }
        return grpc::Status::OK;
      case v1::AgentMessage::kHealth:
        for (const v1::HealthTransition& transition : message.health().transitions()) {
          fleet_.ReportHealth(transition, info_.agent_id());
        }
        return grpc::Status::OK;
      case v1::AgentMessage::kDemand:
        fleet_.ReportDemand(this, message.demand());
        return grpc::Status::OK;
      case v1::AgentMessage::kUsage: {
        absl::Status stored = store_.StoreUsage(message.usage());
        if (!stored.ok()) {
          // Not acked: the agent keeps it spooled and sends it again.
          spdlog::error("cannot store usage batch {} of {}: {}", message.usage().sequence(),
                        info_.agent_id(), std::string(stored.message()));
          return grpc::Status::OK;
        }
        auto ack = std::make_shared<v1::ControlMessage>();
        ack->mutable_usage_ack()->set_sequence(message.usage().sequence());
        Send(std::move(ack));
        return grpc::Status::OK;
      }
      default:
        return grpc::Status::OK;  // newer agents may send more; ignore what we don't know
    }
  }

  grpc::Status OnHello(const v1::AgentHello& hello) {
    if (registered_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "hello sent twice");
    }
    if (hello.agent_id().empty() || hello.region().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "hello must name the agent_id and region");
    }
    info_.set_agent_id(hello.agent_id());
    info_.set_region(hello.region());
    info_.set_acked_version(hello.applied_version());
    info_.set_listen_address(hello.listen_address());
    info_.set_connected(true);
    registered_ = true;
    spdlog::info("agent {} connected from {} (region {}, has version {})", hello.agent_id(), peer_,
                 hello.region(), hello.applied_version());
    const std::string no_table = fleet_.Register(
        this, {hello.agent_id(), hello.region(), hello.listen_address()}, hello.applied_version());
    if (!no_table.empty()) {
      info_.set_last_nack_reason(
          absl::StrCat("no table for region ", hello.region(), ": ", no_table));
    }
    return Record();
  }

  grpc::Status Record() {
    info_.set_last_seen_unix_ms(UnixMillisNow());
    absl::Status status = store_.RecordAgent(info_);
    if (!status.ok()) {
      spdlog::error("cannot record agent {}: {}", info_.agent_id(), std::string(status.message()));
    }
    return grpc::Status::OK;
  }

  void EndStream(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    done_ = true;
    if (writing_) {
      finishing_ = true;  // Finish once the write in flight completes
      return;
    }
    Finish(status);
  }

  Fleet& fleet_;
  TopologyStore& store_;
  const std::string peer_;
  v1::AgentMessage in_;
  v1::AgentInfo info_;
  bool registered_ = false;  // touched only from reads, which never overlap

  absl::Mutex mu_;
  // Shared with the fleet (one region's table goes to all its agents); gRPC serializes each
  // write, so nothing here changes them.
  std::deque<std::shared_ptr<const v1::ControlMessage>> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>* AgentSyncService::Sync(
    grpc::CallbackServerContext* context) {
  return new SyncReactor(fleet_, store_, context, token_.Check(context->client_metadata()));
}

}  // namespace spillway
