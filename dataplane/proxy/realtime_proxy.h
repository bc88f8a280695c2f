// A Realtime WebSocket session through the agent: the backend's socket is opened first, trying
// the route's candidates in the router's order (a 429, a 503 with retry-after or a failed
// connection moves on, as for an HTTP request, since no session exists before the 101); only
// then is the client's upgrade accepted, and messages are relayed until either side closes
// (realtime_relay.h). The backend's `response.done` events are metered.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "dataplane/proxy/proxy.h"
#include "dataplane/routing/backend_observer.h"
#include "dataplane/upstream/upstream_pool.h"

namespace spillway {

class RealtimeProxy {
 public:
  // `observer` (may be null) hears of every 429 a backend answers.
  RealtimeProxy(const ProxyOptions& options, BackendObserver* observer)
      : options_(options), observer_(observer) {}

  // `request` is an authenticated, routed WebSocket upgrade (its client_request the GET with
  // its head; route_param names the query parameter to rewrite). The outcome's status is 101
  // for a session that was relayed (usage: its responses' sums; error: why it was cut, if it
  // was), or the HTTP status the client was answered with instead; keep_alive is false.
  asio::awaitable<ProxyOutcome> Run(beast::tcp_stream& client, const ProxyRequest& request,
                                    UpstreamPool& pool, FastRandom& random) const;

 private:
  ProxyOptions options_;
  BackendObserver* observer_;
};

}  // namespace spillway
