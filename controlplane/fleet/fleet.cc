// See fleet.h. Tables are compiled once per (region, version) and one message is shared by
// the agents of that region; pushes happen under the fleet lock so every stream sees versions
// in order.
#include "controlplane/fleet/fleet.h"

#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/drain_names.h"
#include "common/log_event.h"
#include "common/pin_update_rules.h"
#include "common/wall_clock.h"

namespace spillway {
namespace {

// An empty message on an arena of its own, freed with the last reference. A region's table
// is hundreds of thousands of small fields; on an arena that is a few large allocations,
// and freeing it takes one free per block.
std::shared_ptr<v1::ControlMessage> NewArenaMessage() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 64 << 10;
  options.max_block_size = 1 << 20;
  auto arena = std::make_shared<google::protobuf::Arena>(options);
  v1::ControlMessage* message =
      google::protobuf::Arena::CreateMessage<v1::ControlMessage>(arena.get());
  return std::shared_ptr<v1::ControlMessage>(std::move(arena), message);
}

}  // namespace

Fleet::Fleet(TopologyStore& store, const CompileOptions& options)
    : store_(store), options_(options) {}

absl::Status Fleet::Init() {
  absl::StatusOr<StoredTopology> loaded = store_.Load();
  if (!loaded.ok()) {
    return loaded.status();
  }
  absl::MutexLock lock(&mu_);
  current_ = *std::move(loaded);
  compiler_.reset();
  tables_.clear();
  budgets_.SetTopology(current_.topology);
  return absl::OkStatus();
}

absl::Status Fleet::OnTopologyChanged() {
  absl::StatusOr<StoredTopology> loaded = store_.Load();
  if (!loaded.ok()) {
    return loaded.status();
  }
  Adopt(*std::move(loaded));
  return absl::OkStatus();
}

bool Fleet::Adopt(StoredTopology loaded) {
  absl::MutexLock lock(&mu_);
  if (loaded.version <= current_.version) {
    return false;
  }
  current_ = std::move(loaded);
  compiler_.reset();
  tables_.clear();
  // New shares before new tables: a lowered limit is never enforced with the old split.
  budgets_.SetTopology(current_.topology);
  PushBudgets();
  PruneExpired();
  for (auto& [stream, connected] : streams_) {
    absl::StatusOr<const RegionTable*> table = TableFor(connected.identity.region);
    if (!table.ok()) {
      spdlog::warn("no table for agent {} in region {}: {}", connected.identity.agent_id,
                   connected.identity.region, std::string(table.status().message()));
      continue;
    }
    connected.backend_ids = (*table)->backend_ids;
    stream->Send((*table)->message);
  }
  LogEvent(spdlog::level::info, "tables_pushed",
           {{"version", current_.version}, {"agents", streams_.size()}},
           absl::StrCat("topology version ", current_.version, " pushed to ", streams_.size(),
                        " connected agent(s)"));
  return true;
}

uint64_t Fleet::version() const {
  absl::MutexLock lock(&mu_);
  return current_.version;
}

v1::Topology Fleet::topology() const {
  absl::MutexLock lock(&mu_);
  return current_.topology;
}

absl::StatusOr<const Fleet::RegionTable*> Fleet::TableFor(const std::string& region) {
  if (current_.version == 0) {
    return absl::FailedPreconditionError("no topology has been applied yet");
  }
  auto cached = tables_.find(region);
  if (cached != tables_.end()) {
    RegionTable& entry = cached->second;
    if (entry.health_generation != health_generation_) {
      // Health moved since: one copy per region, not one per agent.
      std::shared_ptr<v1::ControlMessage> message = NewArenaMessage();
      *message = *entry.message;
      *message->mutable_table()->mutable_health() = OverlayFor(entry.backend_ids);
      entry.message = std::move(message);
      entry.health_generation = health_generation_;
    }
    return &entry;
  }
  if (!compiler_.has_value()) {
    absl::StatusOr<RoutingTableCompiler> compiler =
        RoutingTableCompiler::Create(current_.topology, options_);
    if (!compiler.ok()) {
      return compiler.status();
    }
    compiler_ = *std::move(compiler);
  }
  std::shared_ptr<v1::ControlMessage> message = NewArenaMessage();
  if (absl::Status status = compiler_->CompileInto(region, current_.version, UnixMillisNow(),
                                                   message->mutable_table());
      !status.ok()) {
    return status;
  }
  auto backend_ids = std::make_shared<absl::flat_hash_set<std::string>>();
  for (const v1::Backend& backend : message->table().backends()) {
    backend_ids->insert(backend.id());
  }
  RegionTable entry;
  entry.backend_ids = std::move(backend_ids);
  *message->mutable_table()->mutable_health() = OverlayFor(entry.backend_ids);
  entry.message = std::move(message);
  entry.health_generation = health_generation_;
  return &tables_.insert_or_assign(region, std::move(entry)).first->second;
}

std::string Fleet::Register(AgentStream* stream, const AgentIdentity& identity,
                            uint64_t applied_version) {
  absl::MutexLock lock(&mu_);
  Connected& connected = streams_[stream];
  connected.identity = identity;
  connected.acked_version = applied_version;
  // Its shares go out before its table, so it never serves a tenant without one: the stamp's
  // new split, or within an interval of the last one a provisional share of its own until
  // the split follows (FlushBudgets).
  connected.budget_key = ++next_budget_key_;
  budgets_.AddAgent(connected.budget_key, identity.region, identity.reads_budget_columns);
  PushBudgets();
  PruneExpired();
  absl::StatusOr<const RegionTable*> table = TableFor(identity.region);
  if (!table.ok()) {
    return std::string(table.status().message());
  }
  connected.backend_ids = (*table)->backend_ids;
  if (applied_version != current_.version) {
    stream->Send((*table)->message);
  } else {
    // It has this version already (a reconnect): only what changed meanwhile, the health.
    auto message = std::make_shared<v1::ControlMessage>();
    *message->mutable_health() = OverlayFor(connected.backend_ids);
    stream->Send(std::move(message));
  }
  return "";
}

void Fleet::Unregister(AgentStream* stream, absl::FunctionRef<void(bool still_connected)> gone) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) {
    return;
  }
  const std::string agent_id = it->second.identity.agent_id;
  budgets_.RemoveAgent(it->second.budget_key);
  streams_.erase(it);
  PushBudgets();  // its shares go to the agents that remain
  gone(std::any_of(streams_.begin(), streams_.end(),
                   [&](const auto& entry) { return entry.second.identity.agent_id == agent_id; }));
}

void Fleet::RecordAck(AgentStream* stream, uint64_t version) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(stream);
  if (it != streams_.end()) {
    it->second.acked_version = version;
  }
}

namespace {

// The topology's drains with the region each drained part lives in.
std::vector<FleetSnapshot::Drain> DrainsOf(const v1::Topology& topology) {
  std::vector<FleetSnapshot::Drain> drains;
  if (topology.drains().empty()) {
    return drains;
  }
  absl::flat_hash_map<std::string, std::string> region_of_instance;
  for (const v1::Instance& instance : topology.instances()) {
    region_of_instance[instance.name()] = instance.region();
  }
  for (const v1::Drain& drain : topology.drains()) {
    std::string region = drain.name();
    if (drain.scope() != v1::DRAIN_SCOPE_REGION) {
      const std::string instance = drain.name().substr(0, drain.name().find('/'));
      region = region_of_instance[instance];
    }
    drains.push_back({std::string(DrainScopeName(drain.scope())), drain.name(), region});
  }
  return drains;
}

}  // namespace

FleetSnapshot Fleet::Snapshot() const {
  FleetSnapshot snapshot;
  const int64_t now = UnixMillisNow();
  absl::flat_hash_map<v1::HealthState, uint64_t> by_state;
  {
    absl::MutexLock lock(&mu_);
    snapshot.version = current_.version;
    snapshot.agents.reserve(streams_.size());
    for (const auto& [stream, connected] : streams_) {
      snapshot.agents.push_back(
          {connected.identity.agent_id, connected.identity.region, connected.acked_version});
    }
    snapshot.regions.reserve(static_cast<std::size_t>(current_.topology.regions_size()));
    for (const v1::Region& region : current_.topology.regions()) {
      snapshot.regions.push_back(region.name());
    }
    for (const auto& [id, health] : health_) {
      if (health.until_unix_ms() == 0 || health.until_unix_ms() > now) {
        ++by_state[health.state()];
      }
    }
    snapshot.drains = DrainsOf(current_.topology);
  }
  std::sort(snapshot.regions.begin(), snapshot.regions.end());
  // Every state, present or not, so a dashboard's series do not come and go.
  snapshot.health_by_state = {{"throttled", by_state[v1::HEALTH_STATE_THROTTLED]},
                              {"unhealthy", by_state[v1::HEALTH_STATE_UNHEALTHY]},
                              {"half_open", by_state[v1::HEALTH_STATE_HALF_OPEN]}};
  return snapshot;
}

void Fleet::ReportDemand(AgentStream* stream, const v1::DemandReport& report) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) {
    return;
  }
  budgets_.ReportDemand(it->second.budget_key, report);
  PushBudgets();
}

int Fleet::SharePins(AgentStream* stream, const v1::PinUpdates& updates) {
  auto message = std::make_shared<v1::ControlMessage>();
  v1::PinUpdates* relayed = message->mutable_pins();
  for (const v1::PinUpdate& update : updates.updates()) {
    if (relayed->updates_size() >= kMaxPinUpdatesPerMessage) {
      break;
    }
    if (!WellFormedPinUpdate(update)) {
      continue;
    }
    *relayed->add_updates() = update;
  }
  if (relayed->updates().empty()) {
    return 0;
  }
  absl::MutexLock lock(&mu_);
  auto from = streams_.find(stream);
  if (from == streams_.end()) {
    return 0;
  }
  for (const auto& [peer, connected] : streams_) {
    if (peer != stream && connected.identity.region == from->second.identity.region) {
      peer->SendDroppable(message);
    }
  }
  return relayed->updates_size();
}

void Fleet::FlushBudgets() {
  absl::MutexLock lock(&mu_);
  PushBudgets();
}

void Fleet::PushBudgets() {
  absl::flat_hash_map<BudgetAllocator::AgentKey, AgentStream*> by_key;
  for (const auto& [stream, connected] : streams_) {
    by_key[connected.budget_key] = stream;
  }
  std::vector<std::pair<AgentStream*, std::shared_ptr<v1::ControlMessage>>> messages;
  budgets_.Rebalance(std::chrono::steady_clock::now(), [&](BudgetAllocator::AgentKey key) {
    auto it = by_key.find(key);
    std::shared_ptr<v1::ControlMessage> message = NewArenaMessage();
    messages.emplace_back(it == by_key.end() ? nullptr : it->second, message);
    return message->mutable_budgets();
  });
  for (auto& [stream, message] : messages) {
    if (stream != nullptr) {
      stream->Send(std::move(message));
    }
  }
}

bool Fleet::IsConnected(const std::string& agent_id) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [stream, connected] : streams_) {
    if (connected.identity.agent_id == agent_id) {
      return true;
    }
  }
  return false;
}

std::optional<int64_t> Fleet::CapReportedDeadline(int64_t until_unix_ms) {
  const int64_t now = UnixMillisNow();
  if (until_unix_ms <= now) {
    return std::nullopt;
  }
  return std::min<int64_t>(until_unix_ms, now + absl::ToInt64Milliseconds(kMaxReportedBlock));
}

void Fleet::ReportThrottle(const v1::ThrottleEvent& event, const std::string& reporter) {
  // Saturating: a hostile at_unix_ms near INT64_MAX must not wrap into the past.
  const int64_t at = std::clamp<int64_t>(event.at_unix_ms(), 0, int64_t{1} << 62);
  const std::optional<int64_t> until = CapReportedDeadline(at + event.retry_after_ms());
  if (!until.has_value()) {
    return;  // already over (or a clock far behind): nothing to steer away from
  }
  v1::BackendHealth shared;
  {
    absl::MutexLock lock(&mu_);
    v1::BackendHealth& health = health_[event.backend_id()];
    if (health.until_unix_ms() >= *until) {
      return;  // already known to be blocked at least this long
    }
    health.set_backend_id(event.backend_id());
    health.set_state(v1::HEALTH_STATE_THROTTLED);
    health.set_until_unix_ms(*until);
    health.set_reported_by(reporter);
    health.set_reason(absl::StrCat("429, retry after ", event.retry_after_ms(), " ms"));
    ++health_generation_;
    PushHealth();
    shared = health;
  }
  if (health_sink_) {
    health_sink_(event.backend_id(), &shared);
  }
}

void Fleet::ReportHealth(const v1::HealthTransition& transition, const std::string& reporter) {
  // No deadline (0) means "until an agent reports it healthy"; a deadline is capped like a
  // throttle's, and one already past changes nothing.
  std::optional<int64_t> until = 0;
  if (transition.until_unix_ms() != 0) {
    until = CapReportedDeadline(transition.until_unix_ms());
    if (!until.has_value() && transition.to() != v1::HEALTH_STATE_HEALTHY) {
      return;
    }
  }
  std::optional<v1::BackendHealth> shared;
  {
    absl::MutexLock lock(&mu_);
    if (transition.to() == v1::HEALTH_STATE_HEALTHY) {
      health_.erase(transition.backend_id());
    } else {
      v1::BackendHealth& health = health_[transition.backend_id()];
      health.set_backend_id(transition.backend_id());
      health.set_state(transition.to());
      health.set_until_unix_ms(*until);
      health.set_reported_by(reporter);
      health.set_reason(transition.reason());
      shared = health;
    }
    ++health_generation_;
    PushHealth();
  }
  if (health_sink_) {
    health_sink_(transition.backend_id(), shared.has_value() ? &*shared : nullptr);
  }
}

void Fleet::SetHealthSink(HealthSink sink) { health_sink_ = std::move(sink); }

void Fleet::AdoptSharedHealth(const std::vector<v1::BackendHealth>& entries) {
  absl::flat_hash_map<std::string, v1::BackendHealth> adopted;
  for (const v1::BackendHealth& entry : entries) {
    adopted[entry.backend_id()] = entry;
  }
  absl::MutexLock lock(&mu_);
  bool same = adopted.size() == health_.size();
  for (auto it = adopted.begin(); same && it != adopted.end(); ++it) {
    auto mine = health_.find(it->first);
    same =
        mine != health_.end() && mine->second.SerializeAsString() == it->second.SerializeAsString();
  }
  if (same) {
    return;  // this replica's own report coming back, or nothing new
  }
  health_ = std::move(adopted);
  ++health_generation_;
  PushHealth();
}

absl::flat_hash_map<std::string, int64_t> Fleet::AgentsPerRegion() const {
  absl::MutexLock lock(&mu_);
  return budgets_.AgentsPerRegion();
}

void Fleet::SetPeers(const std::vector<PeerAgents>& peers, const std::string& me) {
  absl::MutexLock lock(&mu_);
  budgets_.SetPeers(peers, me);
  PushBudgets();
}

v1::HealthOverlay Fleet::Health() const {
  absl::MutexLock lock(&mu_);
  v1::HealthOverlay overlay;
  overlay.set_generated_at_unix_ms(UnixMillisNow());
  for (const auto& [id, health] : health_) {
    if (health.until_unix_ms() == 0 || health.until_unix_ms() > overlay.generated_at_unix_ms()) {
      *overlay.add_backends() = health;
    }
  }
  return overlay;
}

v1::HealthOverlay Fleet::OverlayFor(const BackendIds& backend_ids) const {
  v1::HealthOverlay overlay;
  overlay.set_generated_at_unix_ms(UnixMillisNow());
  for (const auto& [id, health] : health_) {
    if (backend_ids != nullptr && backend_ids->contains(id)) {
      *overlay.add_backends() = health;
    }
  }
  return overlay;
}

void Fleet::PushHealth() {
  PruneExpired();
  for (const auto& [stream, connected] : streams_) {
    auto message = std::make_shared<v1::ControlMessage>();
    *message->mutable_health() = OverlayFor(connected.backend_ids);
    stream->Send(std::move(message));
  }
}

void Fleet::PruneExpired() {
  const int64_t now = UnixMillisNow();
  if (absl::erase_if(health_, [now](const auto& entry) {
        return entry.second.until_unix_ms() != 0 && entry.second.until_unix_ms() <= now;
      }) > 0) {
    ++health_generation_;
  }
}

}  // namespace spillway
