// See agent_sync_service.h. One read and one write in flight at a time; writes queue in
// the reactor. The reactor deletes itself in OnDone, after leaving the Fleet.
#include "controlplane/fleet/agent_sync_service.h"

#include <grpc/grpc_security_constants.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/log_event.h"
#include "common/wall_clock.h"

namespace spillway {
namespace {

constexpr absl::string_view kIdentityScheme = "spillway://";
// Droppable messages (pin updates) wait behind at most this many others for one agent.
constexpr std::size_t kMaxDroppableBacklog = 256;

// The identity a client certificate vouches for: a URI subjectAltName
// spillway://<region>/<agent-id>. Empty when there is no such URI (no certificate, or one
// that only proves membership of the fleet, like the shared token); an error when the
// certificate names more than one identity or a malformed one.
absl::StatusOr<std::optional<AgentIdentity>> CertifiedIdentity(
    const grpc::CallbackServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) {
    return std::nullopt;
  }
  std::optional<AgentIdentity> found;
  for (const grpc::string_ref& uri : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    const absl::string_view value(uri.data(), uri.size());
    if (!absl::StartsWith(value, kIdentityScheme)) {
      continue;
    }
    const std::vector<absl::string_view> parts =
        absl::StrSplit(value.substr(kIdentityScheme.size()), '/');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty() || found.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "client certificate URI ", value,
          found.has_value() ? " is a second identity" : " is not spillway://<region>/<agent-id>"));
    }
    found = AgentIdentity{std::string(parts[1]), std::string(parts[0]), ""};
  }
  return found;
}

class SyncReactor final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>,
                          public AgentStream {
 public:
  SyncReactor(Fleet& fleet, TopologyStore& store, grpc::CallbackServerContext* context,
              const grpc::Status& auth)
      : fleet_(fleet), store_(store), peer_(context->peer()) {
    grpc::Status status = auth;
    if (status.ok()) {
      absl::StatusOr<std::optional<AgentIdentity>> certified = CertifiedIdentity(*context);
      if (certified.ok()) {
        certified_ = *std::move(certified);
      } else {
        status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              std::string(certified.status().message()));
      }
    }
    if (!status.ok()) {
      LogEvent(spdlog::level::warn, "agent_refused",
               {{"peer", peer_},
                {"code", static_cast<int>(status.error_code())},
                {"reason", status.error_message()}},
               absl::StrCat("agent stream from ", peer_, " refused: ", status.error_message()));
      Finish(status);
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

  bool SendDroppable(std::shared_ptr<const v1::ControlMessage> message) override {
    {
      absl::MutexLock lock(&mu_);
      if (queue_.size() >= kMaxDroppableBacklog) {
        if (dropped_++ == 0) {
          spdlog::warn("agent stream from {} is {} messages behind: pin updates for it are dropped",
                       peer_, queue_.size());
        }
        return false;
      }
    }
    Send(std::move(message));
    return true;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    if (!ok) {
      // The stream is going away: OnReadDone(false) finishes it, unless it already tried.
      writing_ = false;
      queue_.clear();
      if (finishing_) {
        Finish(finish_status_);
      }
      return;
    }
    if (queue_.empty()) {
      writing_ = false;
      if (finishing_) {
        Finish(finish_status_);
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
      // Recorded under the fleet's lock (RecordAgent only queues), so a reconnect that
      // registered first is not marked disconnected by this old stream's end.
      fleet_.Unregister(this, [this](bool still_connected) {
        v1::AgentInfo info = info_;
        info.set_connected(still_connected);
        info.set_last_seen_unix_ms(UnixMillisNow());
        (void)store_.RecordAgent(info);
      });
      LogEvent(spdlog::level::info, "agent_disconnected",
               {{"agent", info_.agent_id()},
                {"region", info_.region()},
                {"peer", peer_},
                {"acked_version", info_.acked_version()}},
               absl::StrCat("agent ", info_.agent_id(), " (", info_.region(), ") disconnected"));
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
        LogEvent(spdlog::level::info, "agent_acked",
                 {{"agent", info_.agent_id()},
                  {"region", info_.region()},
                  {"version", message.ack().version()}},
                 absl::StrCat("agent ", info_.agent_id(), " (", info_.region(),
                              ") applied version ", message.ack().version()));
        info_.set_acked_version(message.ack().version());
        info_.clear_last_nack_reason();
        fleet_.RecordAck(this, message.ack().version());
        return Record();
      case v1::AgentMessage::kNack:
        LogEvent(spdlog::level::warn, "agent_nacked",
                 {{"agent", info_.agent_id()},
                  {"region", info_.region()},
                  {"version", message.nack().version()},
                  {"reason", message.nack().reason()}},
                 absl::StrCat("agent ", info_.agent_id(), " refused version ",
                              message.nack().version(), ": ", message.nack().reason()));
        info_.set_last_nack_reason(message.nack().reason());
        fleet_.counters().RecordNack();
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
      case v1::AgentMessage::kPins:
        fleet_.SharePins(this, message.pins());
        return grpc::Status::OK;
      case v1::AgentMessage::kTraffic:
        fleet_.traffic().Record(info_.agent_id(), info_.region(), message.traffic(),
                                UnixMillisNow());
        return grpc::Status::OK;
      case v1::AgentMessage::kUsage: {
        // The stream speaks for the agent of its hello only: usage is charged to it.
        if (message.usage().agent_id() != info_.agent_id()) {
          return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              absl::StrCat("usage batch for agent '", message.usage().agent_id(),
                                           "' on the stream of agent '", info_.agent_id(), "'"));
        }
        bool newly_stored = false;
        absl::Status stored = store_.StoreUsage(message.usage(), &newly_stored);
        fleet_.counters().RecordUsageBatch(
            !stored.ok()   ? FleetCounters::UsageOutcome::kFailed
            : newly_stored ? FleetCounters::UsageOutcome::kStored
                           : FleetCounters::UsageOutcome::kDuplicate,
            static_cast<uint64_t>(message.usage().aggregates_size()));
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
    if (certified_.has_value() &&
        (certified_->agent_id != hello.agent_id() || certified_->region != hello.region())) {
      return grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          absl::StrCat("hello claims agent '", hello.agent_id(), "' in region '", hello.region(),
                       "' but the client certificate is for ", kIdentityScheme, certified_->region,
                       "/", certified_->agent_id));
    }
    info_.set_agent_id(hello.agent_id());
    info_.set_region(hello.region());
    info_.set_acked_version(hello.applied_version());
    info_.set_listen_address(hello.listen_address());
    info_.set_replica(fleet_.replica_id());
    info_.set_connected(true);
    registered_ = true;
    LogEvent(spdlog::level::info, "agent_connected",
             {{"agent", hello.agent_id()},
              {"region", hello.region()},
              {"peer", peer_},
              {"version", hello.applied_version()},
              {"listen", hello.listen_address()}},
             absl::StrCat("agent ", hello.agent_id(), " connected from ", peer_, " (region ",
                          hello.region(), ", has version ", hello.applied_version(), ")"));
    const std::string no_table = fleet_.Register(
        this,
        {hello.agent_id(), hello.region(), hello.listen_address(), hello.reads_budget_columns()},
        hello.applied_version());
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
      finishing_ = true;  // Finish once the write in flight completes, with this status
      finish_status_ = status;
      return;
    }
    Finish(status);
  }

  Fleet& fleet_;
  TopologyStore& store_;
  const std::string peer_;
  v1::AgentMessage in_;
  v1::AgentInfo info_;
  std::optional<AgentIdentity> certified_;  // from the client certificate, if it names one
  bool registered_ = false;                 // touched only from reads, which never overlap

  absl::Mutex mu_;
  // Shared with the fleet (one region's table goes to all its agents); gRPC serializes each
  // write, so nothing here changes them.
  std::deque<std::shared_ptr<const v1::ControlMessage>> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);  // why the stream ends, for the agent
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;  // droppable messages not queued
};

}  // namespace

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>* AgentSyncService::Sync(
    grpc::CallbackServerContext* context) {
  return new SyncReactor(fleet_, store_, context, token_.Check(context->client_metadata()));
}

}  // namespace spillway
