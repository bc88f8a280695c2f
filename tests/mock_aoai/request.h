// What a request to the mock asks for: which route its method and target name, and the facts
// its JSON body carries that shape the answer (prompt size, max_tokens, n, stream...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/mock_aoai/token_issuer.h"

namespace spillway::mock {

enum class Operation { kChatCompletions, kCompletions, kEmbeddings };

// Azure's operation name, as its 429 messages spell it ("ChatCompletions_Create").
absl::string_view OperationName(Operation op);

// FNV-1a, the hash of prompts (for the prompt cache and embeddings): stable across runs.
inline constexpr uint64_t kFnvOffset = 1469598103934665603ull;
uint64_t Fnv1a(uint64_t hash, absl::string_view text);

enum class ControlAction { kGetStats, kAddFault, kClearFaults, kListFaults, kReset };

// The multipart uploads answered per deployment (files_routes.h).
enum class MediaOperation { kTranscriptions, kTranslations, kImageEdits };

struct Route {
  enum class Kind {
    kNotFound,
    kApi,
    kControl,
    kToken,
    kResponses,
    kConversations,
    kRealtime,
    // files_routes.h: the Files, Batch and Vector stores APIs, and multipart audio and images.
    kFiles,
    kBatches,
    kVectorStores,
    kMedia,
    kAssistants,
  };
  Kind kind = Kind::kNotFound;
  Operation op = Operation::kChatCompletions;
  ControlAction control = ControlAction::kGetStats;
  bool v1 = false;               // /openai/v1/...: the deployment is the body's `model`
  absl::string_view deployment;  // classic surface only; a view into the target
  bool has_api_version = false;
  absl::string_view api_version;               // a view into the target
  TokenEndpoint token = TokenEndpoint::kImds;  // kToken: which Entra ID endpoint
  absl::string_view tenant;                    // kToken, client credentials: path segment
  absl::string_view query;                     // everything after '?'
  // kResponses (/openai/v1/responses... or the preview /openai/responses...): the path after
  // "responses" ("", "/{id}", "/{id}/cancel", ...), any method; a view into the target.
  absl::string_view responses_path;
  // kConversations (/openai/v1/conversations..., v1 only): the path after "conversations" ("",
  // "/{id}", "/{id}/items", "/{id}/items/{item_id}"), any method; a view into the target.
  absl::string_view conversations_path;
  // kRealtime (/openai/v1/realtime... or the preview /openai/realtime): what follows
  // "realtime" ("" for the WebSocket, "/client_secrets", "/calls"); and from the query, raw,
  // the deployment it names (`model=` on v1, `deployment=` on the preview path) and a key
  // given as `api-key=` (browsers cannot set headers).
  absl::string_view realtime_path;
  // kAssistants (the Assistants API on /openai/assistants|threads... or /openai/v1/...): the path
  // from "/assistants" or "/threads" on, any method; a view into the target.
  absl::string_view assistants_path;
  absl::string_view query_deployment;
  absl::string_view query_api_key;
  // kFiles, kBatches, kVectorStores: the path after the collection's name ("", "/{id}",
  // "/{id}/content", ...), any method; a view into the target. kMedia: which upload.
  absl::string_view collection_path;
  MediaOperation media = MediaOperation::kTranscriptions;
};

Route MatchRoute(absl::string_view method, absl::string_view target);

// The parts of an API request body the mock's answer depends on.
struct ApiRequest {
  std::string model;  // the body's `model`, if any
  int64_t prompt_tokens = 1;
  uint64_t prompt_hash = 0;           // FNV-1a of the prompt text, stable across runs
  std::optional<int64_t> max_tokens;  // max_tokens or max_completion_tokens
  int64_t n = 1;
  int64_t best_of = 0;
  bool stream = false;
  bool include_usage = false;
  int64_t dimensions = 0;                         // embeddings
  absl::InlinedVector<uint64_t, 4> input_hashes;  // embeddings: one per input
};

// InvalidArgument with a client-facing message when the body is not valid JSON or lacks what
// the operation requires.
absl::StatusOr<ApiRequest> ParseApiRequest(Operation op, absl::string_view body);

// What a request is charged up front and how long its answer is.
struct TokenPlan {
  int64_t completion_tokens_per_choice = 0;
  int64_t choices = 1;
  bool truncated = false;  // capped by max_tokens: finish_reason "length"
  int64_t charge = 0;      // prompt + max_tokens (or the default length) × max(n, best_of)
  int64_t actual = 0;      // prompt + completion tokens of all choices: the post-hoc charge
};
TokenPlan PlanTokens(Operation op, const ApiRequest& request, int64_t default_completion_tokens);

}  // namespace spillway::mock
