// What the load generator reads from an answer's body: a stream's events as they arrive (when
// each token event came, the usage chunk, `[DONE]`, an error event), or a whole completion's
// usage. Bounded: an event or a body past its limit is an error, never a growing buffer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway::load {

using Clock = std::chrono::steady_clock;

struct Usage {
  std::optional<int64_t> prompt_tokens;
  std::optional<int64_t> completion_tokens;
};

// The `usage` of a chat completion (JSON text); empty when absent or unreadable.
Usage ParseCompletionUsage(absl::string_view json);

// Splits a text/event-stream body into events (data lines joined, as the SSE spec says) and
// notes, per event: a token (a choice whose delta carries content, a refusal, tool calls, or
// a completion's text), the usage chunk, `[DONE]`, an error.
class SseTiming {
 public:
  using GapSink = std::function<void(std::chrono::microseconds)>;
  // `on_gap` gets the time between each token event and the one before it.
  explicit SseTiming(GapSink on_gap) : on_gap_(std::move(on_gap)) {}

  // Body bytes that arrived at `at`. False once the stream is unusable (an event past
  // kMaxEventBytes): the caller stops reading it.
  bool Feed(absl::string_view bytes, Clock::time_point at);

  std::optional<Clock::time_point> first_token() const { return first_token_; }
  int64_t token_events() const { return token_events_; }
  const Usage& usage() const { return usage_; }
  bool done() const { return done_; }                // `data: [DONE]` came
  bool error_event() const { return error_event_; }  // an `event: error` or an error object
  bool oversized() const { return oversized_; }

  static constexpr size_t kMaxEventBytes = 1 << 20;

 private:
  void Line(absl::string_view line, Clock::time_point at);
  void Dispatch(Clock::time_point at);

  GapSink on_gap_;
  std::string line_;         // a line not yet ended
  std::string data_;         // the event's data lines so far
  bool error_name_ = false;  // the event's `event:` field said "error"
  std::optional<Clock::time_point> first_token_;
  Clock::time_point last_token_{};
  int64_t token_events_ = 0;
  Usage usage_;
  bool done_ = false;
  bool error_event_ = false;
  bool oversized_ = false;
};

}  // namespace spillway::load
