// See grpc_keepalive.h. One table of settings feeds both the client and the server form.
#include "common/grpc_keepalive.h"

namespace spillway {
namespace {

struct ChannelArgument {
  const char* name;
  int value;
};

constexpr ChannelArgument kKeepalive[] = {
    {GRPC_ARG_KEEPALIVE_TIME_MS, 20000},
    {GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000},
    {GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1},
};

// Below the clients' 20 s with room to spare: a server refusing pings would cut agents off.
constexpr int kMinReceivedPingIntervalMs = 5000;

}  // namespace

void SetKeepaliveArguments(grpc::ChannelArguments& arguments) {
  for (const ChannelArgument& argument : kKeepalive) {
    arguments.SetInt(argument.name, argument.value);
  }
}

void AddKeepaliveArguments(grpc::ServerBuilder& builder) {
  for (const ChannelArgument& argument : kKeepalive) {
    builder.AddChannelArgument(argument.name, argument.value);
  }
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kMinReceivedPingIntervalMs);
}

}  // namespace spillway
