// What an answer comes to in the report over HTTP/1.1 (load_client.cc) or HTTP/2
// (load_client_h2.cc) alike: the header fields kept, the body timed or kept, the RequestResult.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "tools/load/answer_body.h"
#include "tools/load/load_stats.h"

namespace spillway::load {

// The head of an answer: its status and the headers a report needs.
struct AnswerHead {
  unsigned status = 0;  // 0: no answer (yet)
  bool event_stream = false;
  std::string retry_after_ms;
  std::string retry_after;
  std::string backend;  // x-spillway-backend

  // One header field of the answer, its name in any case: kept when the report needs it.
  void Field(absl::string_view name, absl::string_view value);
  bool has_retry_after() const { return !retry_after_ms.empty() || !retry_after.empty(); }
  // retry-after-ms, else retry-after (seconds or an HTTP date), as the SDKs read them.
  std::chrono::milliseconds RetryAfter() const;
};

// The body of one answer as it arrives, and the result once it ended (or failed).
class LoadAnswer {
 public:
  // A non-streamed answer is kept for its usage up to this; a longer one is read and dropped.
  static constexpr size_t kMaxKeptBody = 8 << 20;

  explicit LoadAnswer(SseTiming::GapSink on_gap) : on_gap_(std::move(on_gap)) {}

  // Body bytes of an answer with `head` that arrived at `at`: a 2xx stream's to the SSE timer, a
  // 2xx completion's kept (up to kMaxKeptBody), an error's dropped. False once a stream's event
  // passed SseTiming::kMaxEventBytes: the exchange ends as "event_too_large".
  bool Take(const AnswerHead& head, absl::string_view bytes, Clock::time_point at);

  // The request sent at `start` ended now with `head` (status 0: unanswered). `error_kind`:
  // empty when the answer arrived whole, else why it did not ("timeout", "cut", "h2_reset"...).
  // A 429 counts as throttled whatever happened to its body.
  RequestResult Result(const AnswerHead& head, absl::string_view error_kind,
                       Clock::time_point start) const;

 private:
  SseTiming::GapSink on_gap_;
  std::optional<SseTiming> sse_;
  std::string body_;
};

}  // namespace spillway::load
