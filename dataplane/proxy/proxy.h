// Forwards one client request through its route: tries candidates in the router's order
// while a backend cannot have started work on it (refused connection, 429, 503 with
// retry-after, HTTP/2 REFUSED_STREAM; docs/choices.md), then relays the answer to the client
// chunk by chunk, a backend's error as it came. Retries happen only before the first byte
// reaches the client; afterwards a failure ends the stream with an SSE error event.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/inlined_vector.h"
#include "dataplane/http/header_arena.h"
#include "dataplane/http/rate_limit_headers.h"
#include "dataplane/routing/backend_observer.h"
#include "dataplane/routing/request_facts.h"
#include "dataplane/routing/router.h"
#include "dataplane/upstream/upstream_pool.h"
#include "dataplane/usage/usage_scanner.h"

namespace spillway {

namespace http = beast::http;

class UploadBody;

struct ProxyOptions {
  int max_attempts = 4;
  // One deadline for the whole request until its response starts (all attempts), never shorter
  // than the first-byte timeout.
  std::chrono::milliseconds request_timeout{120000};
  // Per attempt, streamed or not, unless the route sets its own: reasoning models may think
  // for minutes before their first byte, and a timeout is not retried.
  std::chrono::milliseconds first_byte_timeout{600000};
  std::chrono::milliseconds stream_idle_timeout{60000};  // between two upstream reads
  std::chrono::milliseconds client_write_timeout{60000};
  // An event stream's reads from an HTTP/1.1 backend leave their ACKs to TCP's delayed ACK
  // (DeferReadAcks in dataplane/http/drained_read.h).
  bool stream_delayed_acks = true;
  int64_t default_max_output_tokens = 1024;  // charged when a request names no max_tokens
  // Realtime WebSocket sessions (docs/realtime.md): closed after this long without a message
  // either way, and a message above this size closes the session (1009).
  std::chrono::milliseconds realtime_idle_timeout{300000};
  uint64_t realtime_max_message_bytes = 16 * 1024 * 1024;
};

// A request the session has authenticated, routed and parsed.
struct ProxyRequest {
  const Request<http::string_body>* client_request = nullptr;
  const RoutingSnapshot* snapshot = nullptr;
  const SnapshotRoute* route = nullptr;
  v1::Priority priority = v1::PRIORITY_STANDARD;
  RequestFacts facts;
  // What follows the route in the upstream target, e.g. "/chat/completions?api-version=...":
  // a view into client_request's target.
  absl::string_view upstream_suffix;
  bool v1_surface = false;  // /openai/v1/...: the body's "model" names the deployment
  // Realtime client secrets: the body's session.model names it instead.
  bool model_in_session = false;
  // Non-empty: the query parameter that names the route (Realtime's `model` or `deployment`):
  // set to each backend's deployment upstream, the rest of the client's target kept (but a
  // key in its query).
  absl::string_view route_param;
  // The backend that holds the object the request names (docs/pinning.md): the only
  // candidate, whose 429 goes to the client as it came. Null: the route's plan.
  const SnapshotBackend* pinned = nullptr;
  uint32_t pinned_index = 0;  // pinned's index in the snapshot's backends
  std::string pinned_object;  // the id that pinned it (or is probed for), for error messages
  // An object no pin places (docs/pinning.md, "Finding the owner"): these backends (indexes in
  // the snapshot's backends) are asked in turn. One answering 404, or 400 to a request naming
  // a previous_response_id, does not hold the object (Azure answers so without doing any
  // work) and the next is asked; the first other answer is relayed. Empty: no probe.
  absl::InlinedVector<uint32_t, 8> probe;
  absl::string_view probe_param;  // the body field naming the object; "" for a path id
  // Non-empty: a 200 answer creates an object whose id starts with this; Forward reads it.
  absl::string_view creates;
  bool client_keep_alive = true;
  // An upload streamed from the client (docs/uploads.md): its body is not in client_request,
  // it goes over HTTP/1.1 to the first backend reached, and no other once a byte was sent.
  UploadBody* upload = nullptr;
  // The tenant's quota after this request's charge: replaces the backend's x-ratelimit-*.
  RateLimitHeaders rate_limit{};
};

struct ProxyOutcome {
  unsigned status = 0;
  std::string backend_id;                       // the backend that answered, empty if none did
  const v1::Backend* backend_config = nullptr;  // ... and its config (owned by the snapshot)
  int attempts = 0;
  // The tier of the last attempt (owned by the snapshot): with backend_config, the tier that
  // answered. A pinned or probed request's tier has no pool.
  const SnapshotTier* tier = nullptr;
  // When the answering backend's response head arrived (the relay began); unset if none did.
  std::optional<SteadyTime> first_byte;
  Usage usage;
  bool keep_alive = false;        // the client connection may serve another request
  std::string error;              // why the request failed, for the access log
  std::string created_object_id;  // ProxyRequest::creates: the id the answer created
};

class Proxy {
 public:
  // `observer` (may be null) hears of every 429 a backend answers.
  Proxy(const ProxyOptions& options, BackendObserver* observer)
      : options_(options), observer_(observer) {}

  asio::awaitable<ProxyOutcome> Forward(beast::tcp_stream& client, const ProxyRequest& request,
                                        UpstreamPool& pool, FastRandom& random) const;

  const ProxyOptions& options() const { return options_; }

 private:
  ProxyOptions options_;
  BackendObserver* observer_;
};

}  // namespace spillway
