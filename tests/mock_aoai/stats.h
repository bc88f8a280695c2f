// What the mock saw, for tests to audit a gateway in front of it: request counts by status and
// reported usage per deployment, and a bounded log of arrivals (GET /mock/stats).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace spillway::mock {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t total_tokens = 0;
};

// What the log shows of a request beyond its deployment, status and fault: which endpoint it
// asked for and, on the Responses and Conversations APIs, which response or conversation it
// created or addressed, so tests can tell which mock a follow-up reached. Empty fields are
// logged as "".
struct RequestTrace {
  absl::string_view method;
  absl::string_view path;  // without the query
  absl::string_view response_id;
  absl::string_view previous_response_id;  // a Responses create's previous_response_id
  absl::string_view conversation_id;       // a Responses create's `conversation`, too
};

// What a store of the stateful APIs holds, for the stats: objects kept, objects evicted to make
// room, and (conversations) items dropped from conversations over their bound.
struct StoreCounts {
  int64_t stored = 0;
  uint64_t evicted = 0;
  uint64_t items_evicted = 0;
};

class Stats {
 public:
  static constexpr size_t kLogCapacity = 10'000;
  static constexpr size_t kLogPathLimit = 256;
  static constexpr size_t kRealtimeEnds = 100;

  Stats();

  // One line per answered (or faulted) API request. `status` is 0 when the request got no
  // answer (reset, hang); `fault` is the fault mode that applied, or empty.
  void Record(absl::Time arrival, absl::string_view deployment, int status, bool stream,
              absl::string_view fault, const RequestTrace& trace = {});
  // Answers (200s) being written right now, per deployment: shows whether a stream is still
  // being produced, or was abandoned by the client.
  void BeginAnswer(absl::string_view deployment);
  void EndAnswer(absl::string_view deployment);
  // Usage the mock reported to the client in a response body.
  void AddUsage(absl::string_view deployment, const Usage& usage);
  // The Entra ID side: tokens issued per grant (TokenGrantName), token requests refused, and
  // data-plane requests refused for an expired or invalid bearer token.
  void CountTokenIssued(absl::string_view grant);
  void CountTokenRefused();
  void CountBearerRejected(bool expired);
  // A connection accepted and served as HTTP/1.x or as HTTP/2 (h2c prior knowledge, ALPN h2).
  void CountConnection(bool h2);
  // A request held by the `hang` fault whose client went away: closed the HTTP/1.1 connection
  // or reset the HTTP/2 stream (or the mock stopped). Shows a gateway cancelling upstream.
  void CountHangAbandoned();
  // Realtime WebSocket sessions: one accepted, and how one ended: `by` the
  // client (its close code and reason), the mock (mock.close) or "cut" (no close frame; the
  // reason is the error).
  void RealtimeOpened();
  void RealtimeEnded(absl::string_view deployment, absl::string_view by, int code,
                     absl::string_view reason);
  // {"deployments":{"d":{"requests":N,"in_flight":N,"by_status":{"200":N},"usage":{...}}},
  //  "log":[{"arrival_ms":1.7e12,"deployment":"d","status":200,"stream":false,"fault":"",
  //          "method":"POST","path":"/openai/v1/responses","response_id":"resp_...",
  //          "previous_response_id":"","conversation_id":""}],
  //  "log_dropped":N,
  //  "entra":{"tokens_issued":{"managed_identity":N,"app_service_identity":N,
  //           "client_credentials":N},"token_requests_refused":N,
  //           "bearer_rejected":{"expired":N,"invalid":N}},
  //  "connections":{"http1":N,"h2":N},"hangs_abandoned":N,
  //  "responses":{"stored":N,"evicted":N},
  //  "conversations":{"stored":N,"evicted":N,"items_evicted":N},
  //  "realtime":{"sessions":N,"open":N,"ends":[{"deployment":"d","by":"client","code":1000,
  //              "reason":""}]} (the last kRealtimeEnds ends)}
  // A log entry's path and ids are cut to kLogPathLimit bytes. `responses` and `conversations`
  // are the stateful APIs' stores (responses_store.h, conversations_store.h), given by ToJson's
  // caller.
  // `connections` counts connections accepted since start (or POST /mock/reset) by the
  // protocol they were served with: h2 for h2c prior knowledge and ALPN h2. A TLS connection
  // whose handshake failed, or one closed before its first byte, is in neither.
  std::string ToJson(const StoreCounts& responses = {}, const StoreCounts& conversations = {});
  void Reset();

 private:
  struct PerDeployment {
    int64_t requests = 0;
    int64_t in_flight = 0;
    std::map<int, int64_t> by_status;
    Usage usage;
  };
  struct Entry {
    double arrival_ms = 0;
    std::string deployment;
    int status = 0;
    bool stream = false;
    absl::string_view fault;  // always a FaultModeName literal or empty
    std::string method;
    std::string path;
    std::string response_id;
    std::string previous_response_id;
    std::string conversation_id;
  };

  PerDeployment& FindLocked(absl::string_view deployment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, PerDeployment> deployments_ ABSL_GUARDED_BY(mu_);
  std::vector<Entry> log_ ABSL_GUARDED_BY(mu_);  // ring of kLogCapacity
  size_t log_next_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t log_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> tokens_issued_ ABSL_GUARDED_BY(mu_);
  int64_t token_requests_refused_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t expired_bearer_rejected_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t invalid_bearer_rejected_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t http1_connections_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t h2_connections_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t hangs_abandoned_ ABSL_GUARDED_BY(mu_) = 0;
  struct RealtimeEnd {
    std::string deployment;
    std::string by;
    int code = 0;
    std::string reason;
  };
  int64_t realtime_sessions_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t realtime_open_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<RealtimeEnd> realtime_ends_ ABSL_GUARDED_BY(mu_);
};

}  // namespace spillway::mock
