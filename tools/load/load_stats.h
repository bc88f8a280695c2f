// What a run saw, overall and per minute: counts, latency histograms, tokens, retry-after and
// backends. Each request counts in the minute it was sent (so a row's `sent` is the rate's),
// its latencies and tokens with it even when they arrive in the next minute.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tools/load/latency_histogram.h"

namespace spillway::load {

using Micros = std::chrono::microseconds;

// How a request ended. kOk: a 2xx answer read to its end (a stream to `[DONE]`).
enum class Outcome { kOk, kThrottled, kError };

struct RequestResult {
  Outcome outcome = Outcome::kError;
  unsigned status = 0;     // 0: no answer
  std::string error_kind;  // kError: "http_500", "connect", "timeout", "cut", "stream_error"...
  bool stream = false;
  std::optional<Micros> ttft;            // streams: from the send to the first token's event
  Micros e2e{0};                         // from the send to the answer's last byte
  std::optional<int64_t> prompt_tokens;  // the answer's usage, when it had one
  std::optional<int64_t> completion_tokens;
  std::optional<std::chrono::milliseconds> retry_after;  // 429 answers that carried one
  std::string backend;                                   // x-spillway-backend, if any
};

// What one API key (a tenant) or one route was sent, and how it ended.
struct TargetCounts {
  int64_t sent = 0;
  int64_t ok = 0;
  int64_t throttled = 0;
  int64_t errors = 0;
};

// One row: the whole run, or one minute of it.
struct LoadCounters {
  int64_t sent = 0;
  int64_t ok = 0;
  int64_t throttled = 0;
  int64_t errors = 0;
  int64_t streamed = 0;  // requests sent with "stream": true
  int64_t delayed = 0;   // sent late because --concurrency requests were in flight
  Micros delayed_max{0};
  LatencyHistogram ttft;
  LatencyHistogram itl;       // gaps between successive token events of a stream
  LatencyHistogram e2e;       // ok requests only: a 429's speed says nothing of generation
  int64_t usage_reports = 0;  // ok answers that carried usage
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t retry_after_count = 0;
  int64_t retry_after_total_ms = 0;
  int64_t retry_after_max_ms = 0;
  std::map<std::string, int64_t> by_backend;      // ok answers per x-spillway-backend
  std::map<std::string, int64_t> errors_by_kind;  // at most ~500 kinds: statuses and a few more
  // Indexed as LoadOptions::api_keys and ::routes (kMaxKeys, kMaxRoutes at most); an index
  // nothing was sent to may be missing.
  std::vector<TargetCounts> by_tenant;
  std::vector<TargetCounts> by_route;
};

// At most this many backend names are told apart; the rest count as "(other)".
inline constexpr size_t kMaxBackendNames = 64;

class LoadStats {
 public:
  // A request leaves: `offset` from the run's start, `late` past its due time when the
  // concurrency cap held it, with API key `key` to route `route`. Returns its minute, which
  // the rest of its reports name.
  int64_t RecordSent(std::chrono::nanoseconds offset, bool stream, std::optional<Micros> late,
                     size_t key = 0, size_t route = 0);
  // A gap between two token events of a stream sent in `minute`.
  void RecordTokenGap(int64_t minute, Micros gap);
  void RecordResult(int64_t minute, const RequestResult& result, size_t key = 0, size_t route = 0);
  // The run ended `elapsed` after its start (the last answer's end).
  void Finish(std::chrono::nanoseconds elapsed) { elapsed_ = elapsed; }
  // What the requests went over: "http/1.1" (the default) or "h2".
  void SetProtocol(std::string protocol) { protocol_ = std::move(protocol); }
  const std::string& protocol() const { return protocol_; }

  const LoadCounters& total() const { return total_; }
  // Minute i's row (empty ones included, up to the last minute anything was sent in).
  const std::vector<std::unique_ptr<LoadCounters>>& minutes() const { return minutes_; }
  std::chrono::nanoseconds elapsed() const { return elapsed_; }
  // Seconds of minute `i` that the run covered (60 but for the last).
  double MinuteSeconds(int64_t i) const;
  // Every backend name seen, sorted (CSV columns).
  std::vector<std::string> BackendNames() const;

 private:
  LoadCounters& Minute(int64_t minute);
  void AddResult(LoadCounters& row, const RequestResult& result, size_t key, size_t route);

  LoadCounters total_;
  std::vector<std::unique_ptr<LoadCounters>> minutes_;
  std::chrono::nanoseconds elapsed_{0};
  std::string protocol_ = "http/1.1";
};

// Tokens a second over `seconds` (0 for an empty span).
double TokensPerSecond(int64_t tokens, double seconds);

}  // namespace spillway::load
