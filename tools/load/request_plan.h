// What each request of a run is, decided before it is due: whether it streams, its sizes, its
// key and route, and the HTTP request itself (a prompt of N tokens). When it is due is the
// rate's (rate_schedule.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <utility>

#include "tools/load/load_args.h"
#include "tools/load/token_sizes.h"

namespace spillway::load {

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
  size_t key = 0;    // into LoadOptions::api_keys
  size_t route = 0;  // into LoadOptions::routes
};

// Request `index`'s key and route: combination c = index mod (keys × routes), key c / routes,
// route c mod routes (two keys, two routes: k1 r1, k1 r2, k2 r1, k2 r2, k1 r1, ...).
std::pair<size_t, size_t> Combination(int64_t index, size_t keys, size_t routes);

// Plans successive requests. A fixed seed: two runs of one shape send the same sizes, so
// their reports compare.
class RequestPlanner {
 public:
  explicit RequestPlanner(const LoadOptions& options);
  PlannedRequest Next();

 private:
  const LoadOptions& options_;
  std::mt19937_64 random_{20240521};
  SizeDraw prompt_;
  SizeDraw completion_;
  int64_t next_index_ = 0;
};

// The chat-completion request: head (with Host, api-key, Content-Length) and JSON body.
std::string BuildHttpRequest(const LoadOptions& options, const PlannedRequest& planned);

}  // namespace spillway::load
