// Faults injected on demand (--fault, POST /mock/faults): the failures a gateway must survive
// from a real backend, for the next N matching requests and/or for a duration.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/rate_limiter.h"

namespace spillway::mock {

enum class FaultMode {
  kStatus,    // answer `status` with an Azure-shaped error body
  kReset,     // close the connection with RST, unanswered
  kHang,      // read the request, never answer, keep the socket open
  kSlowDrip,  // answer normally, `drip_ms` between SSE events (or body pieces)
  kCut,       // send headers and `cut_after_chunks` events, then close mid-body
  kInterim,   // HTTP/1.1: an interim `status` (1xx, default 103) before the normal answer
  // HTTP/2: GOAWAY(NO_ERROR) whose last-stream-id is the highest stream already being
  // answered; this request and every later stream are refused unprocessed, the earlier ones
  // finish, then the connection closes. HTTP/1.1: the connection closes (FIN) unanswered.
  kGoaway,
  // HTTP/1.1: answer normally (the head still says keep-alive), then close the connection, as
  // a backend whose keep-alive idle timer fires just after the answer. HTTP/2 ignores it.
  kClose,
};

absl::string_view FaultModeName(FaultMode mode);

struct FaultSpec {
  FaultMode mode = FaultMode::kStatus;
  int status = 0;
  int64_t count = 0;  // 0: unlimited
  absl::Duration duration = absl::InfiniteDuration();
  std::string deployment;  // empty: every deployment
  // Sent with a 429 always; with another status only when given (retry_after_given).
  int64_t retry_after_ms = 1000;
  bool retry_after_given = false;
  int64_t drip_ms = 100;
  int64_t cut_after_chunks = 1;
  std::string code;     // status only: error.code, default the status ("503")
  std::string message;  // status only: error.message, default Azure's text for the status
};

// {"mode": "...", "status": 503, "count": 2, "duration_ms": 500, "deployment": "d",
//  "retry_after_ms": 1500 (also on a 503 etc. when given), "drip_ms": 50, "cut_after_chunks": 3,
//  "code": "content_filter", "message": "..."}; `mode` defaults to "status".
absl::StatusOr<FaultSpec> ParseFaultJson(absl::string_view json);
// The flag grammar: `key=value` pairs with the JSON keys, comma-separated; several faults are
// separated by ';'. E.g. "status=503,count=5" or "mode=hang,deployment=d1;mode=reset,count=1".
absl::StatusOr<std::vector<FaultSpec>> ParseFaultFlag(absl::string_view text);

std::string FaultToJson(const FaultSpec& fault);

// The active faults; the oldest one matching a request applies to it.
class FaultTable {
 public:
  explicit FaultTable(Clock clock) : clock_(std::move(clock)) {}

  uint64_t Add(const FaultSpec& fault);
  void Clear();
  // The fault for this request to `deployment`, consuming one of its uses.
  std::optional<FaultSpec> Take(absl::string_view deployment);
  // {"faults":[{"id":1,"remaining":3,...}]}
  std::string ListJson();

 private:
  struct Active {
    uint64_t id;
    FaultSpec spec;
    int64_t remaining;  // 0: unlimited
    absl::Time expires;
  };

  const Clock clock_;
  std::atomic<bool> empty_{true};  // lets the hot path skip the mutex
  absl::Mutex mu_;
  std::vector<Active> active_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace spillway::mock
