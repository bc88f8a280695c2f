// What the agent needs to know about a request body, read in one parse: the model (for the
// /openai/v1 surface), streaming flags, and the token estimate Azure charges up front.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway {

// An object a request body names by id in one of the fields that refer to objects (file_id,
// input_file_id, assistant_id, thread_id, and the lists vector_store_ids and file_ids), at any
// depth: a batch's input file, a run's assistant, a file_search tool's vector stores.
struct ObjectRef {
  absl::string_view field;  // the field's name (static storage)
  std::string id;
};

struct RequestFacts {
  std::string model;
  std::string session_model;  // session.model (Realtime client secrets name the model there)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string previous_response_id;
  std::string conversation;  // Responses: the conversation the response joins
  bool store = true;         // Responses: false keeps nothing on the backend, so nothing to pin
  // In body order; at most kMaxObjectRefs (the first), ids of at most kMaxObjectRefBytes.
  std::vector<ObjectRef> object_refs;
  static constexpr std::size_t kMaxObjectRefs = 16;
  static constexpr std::size_t kMaxObjectRefBytes = 256;
  int64_t prompt_tokens_estimate = 0;
  int64_t max_output_tokens = 0;  // max_tokens / max_completion_tokens / max_output_tokens
  int64_t choices = 1;            // max(n, best_of)
  // Above any per-minute limit, yet a sum of millions of them still fits in an int64_t.
  static constexpr int64_t kMaxEstimate = int64_t{1'000'000'000'000};
  // What Azure charges against TPM before answering: prompt + max output, per choice. A
  // client's huge max_tokens or n saturates at kMaxEstimate instead of overflowing (an
  // overflowed cost once wrapped to nothing charged).
  int64_t EstimatedTokens(int64_t default_max_output) const {
    const int64_t output = max_output_tokens > 0 ? max_output_tokens : default_max_output;
    int64_t per_choices = 0;
    int64_t total = 0;
    if (__builtin_mul_overflow(output, choices, &per_choices) ||
        __builtin_add_overflow(prompt_tokens_estimate, per_choices, &total) ||
        total > kMaxEstimate) {
      return kMaxEstimate;
    }
    return total;
  }
};

// ~4 characters per token plus a small per-message overhead, as Azure's estimator does
// before it has tokenized anything; exactness is corrected from the response's usage.
int64_t EstimateTokensFromChars(int64_t chars, int64_t messages);

// Parses a JSON request body. An empty body yields empty facts; malformed JSON or a
// non-object body is InvalidArgument with the parser's reason.
absl::StatusOr<RequestFacts> ReadRequestFacts(absl::string_view body);
// The same, read into `facts` (which must be default-constructed): the request path's form,
// which fills the request's facts where they stay instead of moving four strings out of a
// StatusOr.
absl::Status ReadRequestFacts(absl::string_view body, RequestFacts& facts);

// Returns `body` with its top-level "model" replaced (the /openai/v1 surface names the
// deployment in the body, so a route name must become the backend's deployment name), or
// with `in_session`, its session.model.
absl::StatusOr<std::string> ReplaceModel(absl::string_view body, absl::string_view model,
                                         bool in_session = false);

}  // namespace spillway
