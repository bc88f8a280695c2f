// One Realtime WebSocket session relayed between a client and a backend, message by message:
// each message goes on as it came (text or binary, bytes and boundaries kept), one message in
// flight per direction (the next is read only once the last was written, so a slow reader
// slows its sender instead of growing a queue). Pings are answered by each hop, never relayed.
// A close from either side closes the other with the same code and reason.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

// Without permessage-deflate: messages pass as they are, and neither side is offered it.
template <class Stream>
using WebSocketOver = websocket::stream<Stream&, false>;
using ClientWebSocket = WebSocketOver<beast::tcp_stream>;

// 1014 (IANA's "Bad Gateway"): what a client is told when its backend's connection failed.
inline constexpr websocket::close_code kCloseBadGateway = static_cast<websocket::close_code>(1014);

struct RealtimeRelayOptions {
  // No message either way for this long: both sides are closed with 1001 (going away).
  std::chrono::milliseconds idle_timeout{300000};
  // Writing one message to either side; past it the connection is cut.
  std::chrono::milliseconds write_timeout{60000};
};

struct RealtimeRelayResult {
  // How the session ended, for the access log: empty when a side closed and the other was
  // told; else why it was cut (a side's connection failed, idle, a message too big).
  std::string error;
  uint64_t client_messages = 0;   // relayed to the backend
  uint64_t backend_messages = 0;  // relayed to the client
};

// Relays until both sides are done. Each stream must be open (handshake done) with its
// closing handshake bounded (websocket::stream_base::timeout) and its read_message_max set;
// `*_tcp` are their TCP streams, whose writes get `options.write_timeout`. `on_backend_text`
// sees each text message from the backend before it is written to the client.
template <class Upstream>
asio::awaitable<RealtimeRelayResult> RelayRealtime(
    ClientWebSocket& client, beast::tcp_stream& client_tcp, WebSocketOver<Upstream>& backend,
    beast::tcp_stream& backend_tcp, const RealtimeRelayOptions& options,
    absl::FunctionRef<void(absl::string_view)> on_backend_text);

}  // namespace spillway
