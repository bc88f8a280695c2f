// The operators' Admin API over the store, with the Fleet told of every committed change
// so agents get new tables at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controlplane/auth/auth.h"
#include "controlplane/fleet/drill_runner.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"
#include "spillway/v1/admin.grpc.pb.h"

namespace spillway {

class AdminService final : public v1::Admin::Service {
 public:
  AdminService(Fleet& fleet, TopologyStore& store, DrillRunner& drills, TokenCheck token)
      : fleet_(fleet), store_(store), drills_(drills), token_(std::move(token)) {}

  grpc::Status Apply(grpc::ServerContext* context, const v1::ApplyRequest* request,
                     v1::ApplyResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status Create(grpc::ServerContext* context, const v1::CreateRequest* request,
                      v1::ApplyResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteRequest* request,
                      v1::ApplyResponse* response) override;
  grpc::Status CreateKey(grpc::ServerContext* context, const v1::CreateKeyRequest* request,
                         v1::CreateKeyResponse* response) override;
  grpc::Status RotateKey(grpc::ServerContext* context, const v1::RotateKeyRequest* request,
                         v1::CreateKeyResponse* response) override;
  grpc::Status RevokeKey(grpc::ServerContext* context, const v1::RevokeKeyRequest* request,
                         v1::ApplyResponse* response) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;
  grpc::Status FleetHealth(grpc::ServerContext* context, const v1::FleetHealthRequest* request,
                           v1::HealthOverlay* response) override;
  grpc::Status Drain(grpc::ServerContext* context, const v1::DrainRequest* request,
                     v1::ApplyResponse* response) override;
  grpc::Status Undrain(grpc::ServerContext* context, const v1::UndrainRequest* request,
                       v1::ApplyResponse* response) override;
  grpc::Status QueryUsage(grpc::ServerContext* context, const v1::UsageQuery* request,
                          v1::UsageQueryResponse* response) override;
  grpc::Status StartDrill(grpc::ServerContext* context, const v1::DrillRequest* request,
                          v1::Drill* response) override;
  grpc::Status GetDrill(grpc::ServerContext* context, const v1::GetDrillRequest* request,
                        v1::Drill* response) override;
  grpc::Status ListDrills(grpc::ServerContext* context, const v1::ListDrillsRequest* request,
                          v1::ListDrillsResponse* response) override;

 private:
  // Runs a mutation: on success logs it and tells the Fleet (unless nothing changed).
  // `operation` names it in the log: "apply", "create", "delete", "revoke_key", "drain", ...
  // `start`: when the change was asked for (its duration, store and push, goes to /metrics).
  grpc::Status Commit(absl::string_view operation, absl::Time start,
                      const absl::StatusOr<v1::ApplyResponse>& result, bool dry_run,
                      v1::ApplyResponse* response);

  Fleet& fleet_;
  TopologyStore& store_;
  DrillRunner& drills_;
  const TokenCheck token_;
};

// Maps an absl::Status onto gRPC, keeping the message (which names the offending input).
grpc::Status ToGrpc(const absl::Status& status);

// The entries of `topology` of one kind (all when unspecified), optionally one by name
// ("instance/deployment" for deployments, "stamp/route" or "route" for routes).
v1::Topology FilterTopology(const v1::Topology& topology, v1::Kind kind, const std::string& name);

}  // namespace spillway
