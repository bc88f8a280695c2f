// Keepalive settings for the long-lived AgentSync streams, in one place so both ends agree:
// a server that receives pings more often than it permits closes the connection.
#pragma once

#include <grpcpp/grpcpp.h>

namespace spillway {

// On a client channel: ping every 20 s, even without a call in flight, and give up on a peer
// silent for 10 s more, so a control plane that vanished without a FIN is noticed.
void SetKeepaliveArguments(grpc::ChannelArguments& arguments);

// On a server: the same pings towards agents, and accept agents' pings as often as every 5 s.
void AddKeepaliveArguments(grpc::ServerBuilder& builder);

}  // namespace spillway
