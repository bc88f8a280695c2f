// See sync_client.h. The sync gRPC API on a dedicated thread pair is the simple choice for
// one long-lived stream: the reader thread applies what arrives, a writer thread drains
// the outbox (gRPC allows one reader and one writer at a time on a stream).
#include "dataplane/sync/sync_client.h"

#include <grpcpp/grpcpp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <optional>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/file_io.h"
#include "common/grpc_keepalive.h"
#include "common/log_event.h"
#include "common/wall_clock.h"
#include "dataplane/sync/budget_columns.h"
#include "dataplane/sync/control_plane_targets.h"
#include "dataplane/sync/pin_exchange.h"
#include "dataplane/sync/table_admission.h"
#include "proto/spillway/v1/grpc_limits.h"
#include "spillway/v1/agent_sync.grpc.pb.h"

namespace spillway {
namespace {

std::string TablePath(const std::string& dir) { return dir + "/routing-table.pb"; }
std::string AgentIdPath(const std::string& dir) { return dir + "/agent-id"; }

// A PEM file's content, or empty (logged): the stream then fails its handshake and is
// retried, rereading the file, instead of stopping the agent over a file being renewed.
std::string ReadPemOrLog(absl::string_view what, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadPemFile(what, path);
  if (!pem.ok()) {
    spdlog::error("{}", std::string(pem.status().message()));
    return "";
  }
  return *std::move(pem);
}

// Read on every connection, so certificates renewed on disk are used without a restart.
std::shared_ptr<grpc::ChannelCredentials> Credentials(const SyncClientOptions& options) {
  if (options.ca_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadPemOrLog("control plane CA", options.ca_file);
  if (!options.cert_file.empty()) {
    ssl.pem_cert_chain = ReadPemOrLog("control plane client certificate", options.cert_file);
    ssl.pem_private_key = ReadPemOrLog("control plane client key", options.key_file);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

SyncClient::SyncClient(SyncClientOptions options, SnapshotSource& snapshots,
                       BackendStateRegistry& states)
    : options_(std::move(options)), snapshots_(snapshots), states_(states) {}

SyncClient::~SyncClient() { Stop(); }

absl::StatusOr<uint64_t> SyncClient::LoadState() {
  absl::StatusOr<std::string> id = ReadFile(AgentIdPath(options_.state_dir));
  if (id.ok() && !id->empty()) {
    agent_id_ = *id;
  } else {
    unsigned char random[6];
    RAND_bytes(random, sizeof(random));
    char host[64] = {};
    gethostname(host, sizeof(host) - 1);
    agent_id_ = absl::StrCat(host, "-", options_.region, "-",
                             absl::BytesToHexString(absl::string_view(
                                 reinterpret_cast<const char*>(random), sizeof(random))));
    if (absl::Status written = WriteFileAtomically(AgentIdPath(options_.state_dir), agent_id_);
        !written.ok()) {
      return written;
    }
  }
  absl::StatusOr<std::string> persisted = ReadFile(TablePath(options_.state_dir));
  if (!persisted.ok()) {
    return 0;  // first start: nothing to serve until the control plane answers
  }
  v1::RoutingTable table;
  if (!table.ParseFromString(*persisted)) {
    spdlog::error("ignoring unreadable {}", TablePath(options_.state_dir));
    return 0;
  }
  if (absl::Status admitted = TableAdmission(table, options_.region, 0); !admitted.ok()) {
    spdlog::error("ignoring persisted {}: {}", TablePath(options_.state_dir),
                  std::string(admitted.message()));
    return 0;
  }
  absl::StatusOr<RoutingSnapshotPtr> snapshot =
      RoutingSnapshot::Build(table, states_, options_.snapshot);
  if (!snapshot.ok()) {
    spdlog::error("ignoring persisted table version {}: {}", table.version(),
                  std::string(snapshot.status().message()));
    return 0;
  }
  snapshots_.Publish(*snapshot);
  applied_version_ = table.version();
  return applied_version_;
}

void SyncClient::Start() {
  thread_ = std::thread([this] { Run(); });
}

void SyncClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) {
      context_->TryCancel();
    }
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void SyncClient::OnThrottled(const std::string& backend_id, std::chrono::milliseconds retry_after) {
  v1::AgentMessage message;
  v1::ThrottleEvent* event = message.mutable_throttle()->add_events();
  event->set_backend_id(backend_id);
  event->set_at_unix_ms(UnixMillisNow());
  event->set_retry_after_ms(static_cast<uint32_t>(retry_after.count()));
  Enqueue(std::move(message));
}

void SyncClient::OnCircuitChanged(const std::string& backend_id, v1::HealthState state,
                                  std::chrono::milliseconds open_for, absl::string_view reason) {
  v1::AgentMessage message;
  v1::HealthTransition* transition = message.mutable_health()->add_transitions();
  const int64_t now = UnixMillisNow();
  transition->set_backend_id(backend_id);
  transition->set_from(state == v1::HEALTH_STATE_HEALTHY ? v1::HEALTH_STATE_UNHEALTHY
                                                         : v1::HEALTH_STATE_HEALTHY);
  transition->set_to(state);
  transition->set_reason(std::string(reason.substr(0, 200)));
  transition->set_at_unix_ms(now);
  if (open_for.count() > 0) {
    transition->set_until_unix_ms(now + open_for.count());
  }
  Enqueue(std::move(message));
}

void SyncClient::OnPinned(absl::string_view digest, const PinOwner& owner) {
  v1::AgentMessage message;
  *message.mutable_pins()->add_updates() = PinUpdateOf(digest, &owner);
  Enqueue(std::move(message));
}

void SyncClient::OnUnpinned(absl::string_view digest) {
  v1::AgentMessage message;
  *message.mutable_pins()->add_updates() = PinUpdateOf(digest, nullptr);
  Enqueue(std::move(message));
}

void SyncClient::SendIfConnected(v1::AgentMessage message) {
  {
    absl::MutexLock lock(&mu_);
    if (context_ == nullptr) {
      return;
    }
  }
  Enqueue(std::move(message));
}

void SyncClient::Enqueue(v1::AgentMessage message) {
  absl::MutexLock lock(&mu_);
  if (SyncOutbox::IsQueued(message)) {
    // Back-pressure instead of dropping: the producer (the usage shipper) waits for the
    // writer. A batch that outlives its stream stays in the spool and is replayed.
    mu_.Await(absl::Condition(this, &SyncClient::OutboxHasRoomOrClosed));
    if (stopping_ || !reading_) {
      return;
    }
  }
  outbox_.Add(std::move(message));
}

bool SyncClient::WriterHasWork() const { return stopping_ || !reading_ || !outbox_.empty(); }

bool SyncClient::OutboxHasRoomOrClosed() const {
  return stopping_ || !reading_ || outbox_.HasRoom();
}

void SyncClient::Run() {
  std::mt19937_64 random(std::random_device{}());
  // A random first replica, so a fleet's streams spread over them.
  TargetRotation targets(options_.targets, static_cast<std::size_t>(random()));
  auto backoff = options_.min_backoff;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        return;
      }
    }
    const std::string target = targets.current();
    const StreamEnd end = RunStream(target);
    // The replica that went away (or never answered) is tried again only after the others.
    targets.Advance();
    if (end.answered) {
      backoff = options_.min_backoff;
      failed_attempts_ = 0;
    } else {
      ++failed_attempts_;
    }
    // Jittered backoff, so a fleet of agents does not reconnect in lockstep.
    const auto wait = std::chrono::milliseconds(
        backoff.count() / 2 + static_cast<int64_t>(random() % (backoff.count() / 2 + 1)));
    if (!end.stopping) {
      const int code = static_cast<int>(end.status.error_code());
      LogEvent(spdlog::level::warn, "control_plane_disconnected",
               {{"target", target},
                {"next_target", targets.current()},
                {"code", code},
                {"reason", end.status.error_message()},
                {"was_connected", end.answered},
                {"failed_attempts", failed_attempts_},
                {"retry_in_ms", wait.count()},
                {"serving_version", applied_version_}},
               absl::StrCat("control plane stream to ", target, " ended: ", code, " ",
                            end.status.error_message(), "; serving table version ",
                            applied_version_, " meanwhile; next try ", targets.current()));
    }
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(wait));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

SyncClient::StreamEnd SyncClient::RunStream(const std::string& target) {
  grpc::ChannelArguments arguments;
  SetKeepaliveArguments(arguments);
  arguments.SetMaxReceiveMessageSize(v1::kMaxGrpcMessageBytes);
  arguments.SetMaxSendMessageSize(v1::kMaxGrpcMessageBytes);
  auto channel = grpc::CreateCustomChannel(target, Credentials(options_), arguments);
  auto stub = v1::AgentSync::NewStub(channel);
  grpc::ClientContext context;
  if (!options_.token.empty()) {
    context.AddMetadata("authorization", "Bearer " + options_.token);
  }
  StreamEnd end;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      end.stopping = true;
      return end;
    }
    context_ = &context;
    reading_ = true;
  }
  auto stream = stub->Sync(&context);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_id(agent_id_);
  hello.mutable_hello()->set_region(options_.region);
  hello.mutable_hello()->set_applied_version(applied_version_);
  hello.mutable_hello()->set_listen_address(options_.listen_address);
  hello.mutable_hello()->set_reads_budget_columns(true);
  if (stream->Write(hello)) {
    std::thread writer([&] {
      for (;;) {
        std::optional<v1::AgentMessage> message;
        {
          absl::MutexLock lock(&mu_);
          mu_.Await(absl::Condition(this, &SyncClient::WriterHasWork));
          if (stopping_ || !reading_) {
            return;
          }
          message = outbox_.Take(UnixMillisNow());
        }
        if (message.has_value() && !stream->Write(*message)) {
          // Lost with the stream: the next hello states the applied version, and the usage
          // shipper replays its spool; throttle reports go stale anyway.
          return;
        }
      }
    });
    // After the writer starts: the shipper's replay may wait for room in the outbox.
    if (options_.on_stream_started) {
      options_.on_stream_started();
    }
    v1::ControlMessage message;
    while (stream->Read(&message)) {
      if (!end.answered) {
        // The first answer, not the hello's write, says the control plane took this agent
        // (a refused token ends the stream without one).
        end.answered = true;
        LogEvent(spdlog::level::info, "control_plane_connected",
                 {{"target", target},
                  {"reconnect", ever_answered_},
                  {"failed_attempts", failed_attempts_},
                  {"serving_version", applied_version_}},
                 absl::StrCat(ever_answered_ ? "reconnected" : "connected", " to control plane ",
                              target, " after ", failed_attempts_,
                              " failed attempt(s); serving table version ", applied_version_));
        ever_answered_ = true;
      }
      switch (message.message_case()) {
        case v1::ControlMessage::kTable:
          ApplyTable(message.table());
          ApplyHealth(message.table().health());
          break;
        case v1::ControlMessage::kHealth:
          ApplyHealth(message.health());
          break;
        case v1::ControlMessage::kUsageAck:
          if (options_.on_usage_ack) {
            options_.on_usage_ack(message.usage_ack().sequence());
          }
          break;
        case v1::ControlMessage::kBudgets:
          if (options_.on_budgets) {
            absl::StatusOr<v1::TenantBudgets> budgets =
                BudgetsPerTenant(std::move(*message.mutable_budgets()));
            if (!budgets.ok()) {
              spdlog::warn(
                  "control plane sent a tenant budget split that cannot be read "
                  "(the split in force stays): {}",
                  std::string(budgets.status().message()));
              break;
            }
            options_.on_budgets(*budgets);
          }
          break;
        case v1::ControlMessage::kPins:
          if (options_.pins != nullptr) {
            const PinAdoption adoption = AdoptPinUpdates(message.pins(), *options_.pins);
            if (adoption.refused > 0) {
              spdlog::warn("control plane sent {} malformed pin updates (ignored)",
                           adoption.refused);
            }
          }
          break;
        default:
          break;
      }
    }
    // The status before the cancel: cancelling first would replace the control plane's
    // reason (an invalid token, say) with CANCELLED in the log below.
    end.status = stream->Finish();
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
    }
    context.TryCancel();  // ends a Write still in flight
    writer.join();
    {
      absl::MutexLock lock(&mu_);
      outbox_.OnStreamEnded();
    }
    if (options_.on_stream_ended) {
      options_.on_stream_ended();
    }
  } else {
    end.status = stream->Finish();
  }
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  end.stopping = stopping_;
  return end;
}

void SyncClient::Refuse(const v1::RoutingTable& table, const absl::Status& reason) {
  LogEvent(spdlog::level::err, "table_refused",
           {{"version", table.version()},
            {"region", table.region()},
            {"source", "control_plane"},
            {"serving_version", applied_version_},
            {"reason", reason.message()}},
           absl::StrCat("refusing table version ", table.version(), "; serving version ",
                        applied_version_, ": ", reason.message()));
  v1::AgentMessage reply;
  reply.mutable_nack()->set_version(table.version());
  reply.mutable_nack()->set_reason(std::string(reason.message()));
  Enqueue(std::move(reply));
}

void SyncClient::ApplyTable(const v1::RoutingTable& table) {
  if (absl::Status admitted = TableAdmission(table, options_.region, applied_version_);
      !admitted.ok()) {
    Refuse(table, admitted);
    return;
  }
  absl::StatusOr<RoutingSnapshotPtr> snapshot =
      RoutingSnapshot::Build(table, states_, options_.snapshot);
  if (!snapshot.ok()) {
    Refuse(table, snapshot.status());
    return;
  }
  // Persist before acknowledging: an acked version must survive a restart.
  absl::Status persisted =
      WriteFileAtomically(TablePath(options_.state_dir), table.SerializeAsString());
  if (!persisted.ok()) {
    Refuse(table, absl::Status(persisted.code(),
                               absl::StrCat("cannot persist the table: ", persisted.message())));
    return;
  }
  v1::AgentMessage reply;
  snapshots_.Publish(*snapshot);
  applied_version_ = table.version();
  for (const SnapshotBackend& backend : (*snapshot)->backends()) {
    if (!backend.unusable_reason.empty()) {
      spdlog::warn("backend {} is unusable: {}", backend.config->id(), backend.unusable_reason);
    }
  }
  LogEvent(spdlog::level::info, "table_applied",
           {{"version", table.version()},
            {"region", table.region()},
            {"source", "control_plane"},
            {"backends", table.backends_size()},
            {"routes", table.routes_size()}},
           absl::StrCat("applied routing table version ", table.version(), " (",
                        table.backends_size(), " backends, ", table.routes_size(), " routes)"));
  reply.mutable_ack()->set_version(table.version());
  Enqueue(std::move(reply));
}

void SyncClient::ApplyHealth(const v1::HealthOverlay& overlay) {
  const int64_t wall_now = UnixMillisNow();
  const SteadyTime steady_now = SteadyClock::now();
  for (const v1::BackendHealth& health : overlay.backends()) {
    if (health.until_unix_ms() <= wall_now) {
      continue;
    }
    // Wall-clock deadlines from another host become local steady-clock ones.
    states_.Get(health.backend_id())
        ->breaker.BlockUntil(steady_now +
                             std::chrono::milliseconds(health.until_unix_ms() - wall_now));
  }
}

}  // namespace spillway
