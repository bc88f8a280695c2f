// AgentSync: one callback-API bidi reactor per connected agent (no thread per stream). It
// registers the agent with the Fleet, relays tables and health down, and takes acks,
// nacks, health, throttle events and usage up.
#pragma once

#include <grpcpp/grpcpp.h>

#include "controlplane/auth/auth.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"
#include "spillway/v1/agent_sync.grpc.pb.h"

namespace spillway {

class AgentSyncService final : public v1::AgentSync::CallbackService {
 public:
  AgentSyncService(Fleet& fleet, TopologyStore& store, TokenCheck token)
      : fleet_(fleet), store_(store), token_(std::move(token)) {}

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>* Sync(
      grpc::CallbackServerContext* context) override;

 private:
  Fleet& fleet_;
  TopologyStore& store_;
  const TokenCheck token_;
};

}  // namespace spillway
