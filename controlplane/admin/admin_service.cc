// See admin_service.h. Every method checks the operator token first.
#include "controlplane/admin/admin_service.h"

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/drain_names.h"
#include "common/log_event.h"
#include "common/wall_clock.h"
#include "controlplane/fleet/replica_sync.h"
#include "controlplane/store/topology_diff.h"

namespace spillway {
namespace {

// Keeps the entries of one repeated field that `keep` accepts.
template <typename T, typename Keep>
void KeepIf(google::protobuf::RepeatedPtrField<T>* field, Keep keep) {
  google::protobuf::RepeatedPtrField<T> kept;
  for (T& entry : *field) {
    if (keep(entry)) {
      *kept.Add() = std::move(entry);
    }
  }
  field->Swap(&kept);
}

// A committed topology change: the version agents are about to receive and what it changed.
void LogCommitted(absl::string_view operation, uint64_t version, int added, int changed,
                  int removed) {
  LogEvent(spdlog::level::info, "apply_committed",
           {{"version", version},
            {"operation", operation},
            {"changes", added + changed + removed},
            {"added", added},
            {"changed", changed},
            {"removed", removed}},
           absl::StrCat("topology version ", version, " committed (", operation, "): ", added,
                        " added, ", changed, " changed, ", removed, " removed"));
}

void LogCommitted(absl::string_view operation, const v1::ApplyResponse& response) {
  int added = 0;
  int changed = 0;
  int removed = 0;
  for (const v1::DiffEntry& entry : response.diff()) {
    switch (entry.change()) {
      case v1::DiffEntry::CHANGE_ADDED:
        ++added;
        break;
      case v1::DiffEntry::CHANGE_REMOVED:
        ++removed;
        break;
      default:
        ++changed;
        break;
    }
  }
  LogCommitted(operation, response.version(), added, changed, removed);
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

v1::Topology FilterTopology(const v1::Topology& topology, v1::Kind kind, const std::string& name) {
  v1::Topology out = topology;
  auto by_name = [&](const auto& entry) { return name.empty() || entry.name() == name; };
  auto keep_kind = [&](v1::Kind k) { return kind == v1::KIND_UNSPECIFIED || kind == k; };
  if (!keep_kind(v1::KIND_STAMP)) out.clear_stamps();
  if (!keep_kind(v1::KIND_REGION)) out.clear_regions();
  if (!keep_kind(v1::KIND_SUBSCRIPTION)) out.clear_subscriptions();
  if (!keep_kind(v1::KIND_INSTANCE)) out.clear_instances();
  if (!keep_kind(v1::KIND_DEPLOYMENT)) out.clear_deployments();
  if (!keep_kind(v1::KIND_POOL)) out.clear_pools();
  if (!keep_kind(v1::KIND_ROUTE)) out.clear_routes();
  if (!keep_kind(v1::KIND_TENANT)) out.clear_tenants();
  if (!keep_kind(v1::KIND_DRAIN)) out.clear_drains();
  if (name.empty() || kind == v1::KIND_UNSPECIFIED) {
    return out;
  }
  KeepIf(out.mutable_stamps(), by_name);
  KeepIf(out.mutable_regions(), by_name);
  KeepIf(out.mutable_subscriptions(), by_name);
  KeepIf(out.mutable_instances(), by_name);
  KeepIf(out.mutable_pools(), by_name);
  KeepIf(out.mutable_tenants(), by_name);
  KeepIf(out.mutable_deployments(), [&](const v1::Deployment& d) {
    return d.name() == name || absl::StrCat(d.instance(), "/", d.name()) == name;
  });
  KeepIf(out.mutable_drains(),
         [&](const v1::Drain& d) { return d.name() == name || DrainId(d) == name; });
  KeepIf(out.mutable_routes(), [&](const v1::Route& r) {
    return r.name() == name || absl::StrCat(r.stamp(), "/", r.name()) == name;
  });
  return out;
}

grpc::Status AdminService::Commit(absl::string_view operation, absl::Time start,
                                  const absl::StatusOr<v1::ApplyResponse>& result, bool dry_run,
                                  v1::ApplyResponse* response) {
  if (!result.ok()) {
    fleet_.counters().RecordApply(ApplyResult::kFailed, absl::Now() - start);
    return ToGrpc(result.status());
  }
  *response = *result;
  if (result->changed()) {
    LogCommitted(operation, *result);
    absl::Status pushed = fleet_.OnTopologyChanged();
    if (!pushed.ok()) {
      // Stored and acknowledged: agents get it on their next hello.
      spdlog::error("version {} stored but not pushed: {}", result->version(),
                    std::string(pushed.message()));
    }
  }
  // Counted after the push: the duration is what an operator waits for.
  fleet_.counters().RecordApply(dry_run             ? ApplyResult::kDryRun
                                : result->changed() ? ApplyResult::kChanged
                                                    : ApplyResult::kUnchanged,
                                absl::Now() - start);
  return grpc::Status::OK;
}

grpc::Status AdminService::Apply(grpc::ServerContext* context, const v1::ApplyRequest* request,
                                 v1::ApplyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  const absl::Time start = absl::Now();
  return Commit("apply", start, store_.Apply(request->topology(), request->dry_run()),
                request->dry_run(), response);
}

grpc::Status AdminService::Get(grpc::ServerContext* context, const v1::GetRequest* request,
                               v1::GetResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  response->set_version(fleet_.version());
  *response->mutable_topology() =
      FilterTopology(fleet_.topology(), request->kind(), request->name());
  if (!request->name().empty() && response->topology().ByteSizeLong() == 0) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat(KindName(request->kind()), " '", request->name(), "' does not exist"));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::Create(grpc::ServerContext* context, const v1::CreateRequest* request,
                                  v1::ApplyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  const absl::Time start = absl::Now();
  return Commit("create", start, store_.Create(request->entries(), request->dry_run()),
                request->dry_run(), response);
}

grpc::Status AdminService::Delete(grpc::ServerContext* context, const v1::DeleteRequest* request,
                                  v1::ApplyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  const absl::Time start = absl::Now();
  return Commit("delete", start,
                store_.Delete(request->kind(), request->name(), request->dry_run()),
                request->dry_run(), response);
}

grpc::Status AdminService::CreateKey(grpc::ServerContext* context,
                                     const v1::CreateKeyRequest* request,
                                     v1::CreateKeyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<KeyMaterial> key = store_.CreateKey(request->tenant(), request->key_name());
  if (!key.ok()) {
    return ToGrpc(key.status());
  }
  response->set_tenant(request->tenant());
  response->set_key_name(request->key_name());
  response->set_api_key(key->api_key);
  response->set_version(key->version);
  LogCommitted("create_key", key->version, 0, 1, 0);  // the tenant's entry; never the key
  (void)fleet_.OnTopologyChanged();
  return grpc::Status::OK;
}

grpc::Status AdminService::RotateKey(grpc::ServerContext* context,
                                     const v1::RotateKeyRequest* request,
                                     v1::CreateKeyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<KeyMaterial> key =
      store_.RotateKey(request->tenant(), request->key_name(), request->new_key_name());
  if (!key.ok()) {
    return ToGrpc(key.status());
  }
  response->set_tenant(request->tenant());
  response->set_key_name(key->key_name);
  response->set_api_key(key->api_key);
  response->set_version(key->version);
  LogCommitted("rotate_key", key->version, 0, 1, 0);  // the tenant's entry; never the key
  (void)fleet_.OnTopologyChanged();
  return grpc::Status::OK;
}

grpc::Status AdminService::RevokeKey(grpc::ServerContext* context,
                                     const v1::RevokeKeyRequest* request,
                                     v1::ApplyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  const absl::Time start = absl::Now();
  return Commit("revoke_key", start, store_.RevokeKey(request->tenant(), request->key_name()),
                false, response);
}

grpc::Status AdminService::ListAgents(grpc::ServerContext* context,
                                      const v1::ListAgentsRequest* /*request*/,
                                      v1::ListAgentsResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<std::vector<v1::AgentInfo>> agents = store_.ListAgents();
  if (!agents.ok()) {
    return ToGrpc(agents.status());
  }
  response->set_current_version(fleet_.version());
  response->set_replica(fleet_.replica_id());
  // The store remembers agents across restarts; "connected" is what is true right now: on this
  // replica's streams, or on a replica that still publishes its counts and whose last word on
  // the agent was that it connected (its row says so until the stream ends).
  absl::flat_hash_set<std::string> live;
  if (!fleet_.replica_id().empty()) {
    const int64_t since = UnixMillisNow() - ReplicaSync::kReplicaTimeout.count();
    absl::StatusOr<std::vector<ReplicaAgents>> replicas = store_.ReplicaAgentCounts(since);
    if (!replicas.ok()) {
      return ToGrpc(replicas.status());
    }
    for (const ReplicaAgents& row : *replicas) {
      live.insert(row.replica_id);
    }
  }
  for (v1::AgentInfo& agent : *agents) {
    const bool elsewhere = agent.connected() && agent.replica() != fleet_.replica_id() &&
                           live.contains(agent.replica());
    agent.set_connected(elsewhere || fleet_.IsConnected(agent.agent_id()));
    *response->add_agents() = std::move(agent);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::FleetHealth(grpc::ServerContext* context,
                                       const v1::FleetHealthRequest* /*request*/,
                                       v1::HealthOverlay* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  *response = fleet_.Health();
  return grpc::Status::OK;
}

grpc::Status AdminService::Drain(grpc::ServerContext* context, const v1::DrainRequest* request,
                                 v1::ApplyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  const absl::Time start = absl::Now();
  grpc::Status status =
      Commit("drain", start, store_.Drain(*request), request->dry_run(), response);
  if (status.ok() && response->changed()) {
    LogEvent(spdlog::level::warn, "drained",
             {{"scope", DrainScopeName(request->scope())},
              {"name", request->name()},
              {"reason", request->reason()},
              {"keep_pinned", request->keep_pinned()},
              {"version", response->version()}});
  }
  return status;
}

grpc::Status AdminService::Undrain(grpc::ServerContext* context, const v1::UndrainRequest* request,
                                   v1::ApplyResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  const absl::Time start = absl::Now();
  grpc::Status status =
      Commit("undrain", start, store_.Undrain(*request), request->dry_run(), response);
  if (status.ok() && response->changed()) {
    LogEvent(spdlog::level::warn, "undrained",
             {{"scope", DrainScopeName(request->scope())},
              {"name", request->name()},
              {"version", response->version()}});
  }
  return status;
}

grpc::Status AdminService::StartDrill(grpc::ServerContext* context, const v1::DrillRequest* request,
                                      v1::Drill* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<v1::Drill> drill = drills_.Begin(*request);
  if (!drill.ok()) {
    return ToGrpc(drill.status());
  }
  *response = *std::move(drill);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetDrill(grpc::ServerContext* context,
                                    const v1::GetDrillRequest* request, v1::Drill* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<v1::Drill> drill = drills_.Get(request->id());
  if (!drill.ok()) {
    return ToGrpc(drill.status());
  }
  *response = *std::move(drill);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListDrills(grpc::ServerContext* context,
                                      const v1::ListDrillsRequest* /*request*/,
                                      v1::ListDrillsResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<std::vector<v1::Drill>> drills = drills_.List();
  if (!drills.ok()) {
    return ToGrpc(drills.status());
  }
  for (v1::Drill& drill : *drills) {
    *response->add_drills() = std::move(drill);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::QueryUsage(grpc::ServerContext* context, const v1::UsageQuery* request,
                                      v1::UsageQueryResponse* response) {
  if (grpc::Status auth = token_.Check(context->client_metadata()); !auth.ok()) {
    return auth;
  }
  absl::StatusOr<v1::UsageQueryResponse> usage = store_.QueryUsage(*request);
  if (!usage.ok()) {
    return ToGrpc(usage.status());
  }
  *response = *std::move(usage);
  return grpc::Status::OK;
}

}  // namespace spillway
