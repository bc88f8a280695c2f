// What each request of a run is, decided before it is due: when it is sent, whether it
// streams, its sizes, and the HTTP request itself (a prompt of about N tokens).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "tools/load/load_args.h"

namespace spillway::load {

// How many requests a run sends: those due before the duration ends, at 60 s / rpm apart from
// t = 0 (600 rpm for 6 s: 60).
int64_t RequestCount(int64_t rpm, std::chrono::nanoseconds duration);
// When request `index` is due, from the run's start: evenly spaced, without drift.
std::chrono::nanoseconds DueOffset(int64_t index, int64_t rpm);
// Whether request `index` streams: spread evenly, so any run of requests streams the given
// share to within one request (0.5: every second one).
bool Streams(int64_t index, double share);

// A prompt that the mock (tests/mock_aoai/token_estimate.cc: 4 code points a token, rounded
// up, per message) counts as exactly `tokens`, and that GPT tokenizers (cl100k, o200k) also
// count as `tokens`: words of three letters with a space before each, each one token there.
// The first words spell `sequence` so that no two prompts share a prefix that a prompt cache
// could serve.
std::string BuildPrompt(int64_t tokens, uint64_t sequence);

struct PlannedRequest {
  int64_t index = 0;
  bool stream = false;
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
};

// Draws the sizes of successive requests. A fixed seed: two runs of one shape send the same
// sizes, so their reports compare.
class RequestPlanner {
 public:
  explicit RequestPlanner(const LoadOptions& options);
  PlannedRequest Next();

 private:
  int64_t Draw(const TokenRange& range);

  const LoadOptions& options_;
  std::mt19937_64 random_{20240521};
  int64_t next_index_ = 0;
};

// The chat-completion request: head (with Host, api-key, Content-Length) and JSON body.
std::string BuildHttpRequest(const LoadOptions& options, const PlannedRequest& planned);

}  // namespace spillway::load
