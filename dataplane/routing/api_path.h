// Classifies a request target into what the agent serves: Azure OpenAI operations it knows
// (a fixed table: path, methods, where the route is named), and its own endpoints. Nothing
// else reaches a backend: an unknown operation is 404 before any backend is touched, and a
// path that is not in normal form (percent-encoding, dot or empty segments) is refused.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

enum class ApiSurface {
  kDeployment,  // /openai/deployments/{route}/<operation>
  // /openai/v1/<operation>, and the preview Responses paths under /openai/: the route is the
  // body's model, or the owner of the object the path names; the target goes upstream as is.
  kV1,
  // A Realtime WebSocket: GET with Upgrade: websocket on /openai/realtime (route in the query's
  // `deployment`) or /openai/v1/realtime (its `model`); the agent opens the backend's socket
  // and relays messages (docs/realtime.md).
  kRealtime,
  kHealthz,
  kReadyz,
  kStatus,
  kMetrics,        // Prometheus
  kUnknownOpenAi,  // another /openai/... path: not an operation the gateway knows
  kBadPath,        // not in normal form: refused, never matched
  kNotFound,
};

// How a request names where it must go.
enum class RouteSource : uint8_t {
  kPathRoute,    // the {route} segment of /openai/deployments/{route}/...
  kBodyModel,    // the body's "model" (a follow-up's previous_response_id may pin it)
  kObjectOwner,  // the object id in the path: the backend that created it (its pin)
  // Names no model (creating a conversation, a file, a batch, a thread; listing them): the
  // owner of an object the body names (a batch's input_file_id), else the tenant's default
  // route, the first route of the table it may use (docs/pinning.md).
  kTenantDefault,
  kGateway,          // answered by the agent itself, from its routing table (GET /openai/v1/models)
  kQueryModel,       // the query's `model` parameter (Realtime on /openai/v1)
  kQueryDeployment,  // the query's `deployment` parameter (Realtime on /openai/)
  kSessionModel,     // the body's session.model, else its model (Realtime client secrets)
  kFormModel,        // the "model" field of a multipart upload (audio, image edits on /openai/v1)
};

// The query parameter that names the route for kQueryModel and kQueryDeployment; empty for
// the other sources.
absl::string_view RouteParam(RouteSource source);

enum ApiMethod : uint8_t { kPost = 1, kGet = 2, kDelete = 4 };

// How the request body travels.
enum class BodyHandling : uint8_t {
  kBuffered,  // read whole (within --max-body-bytes), scanned for facts, replayable on failover
  // An upload (multipart files, audio, image edits): streamed to one backend as it arrives,
  // never held whole, within the route's upload limit; not replayed (docs/uploads.md).
  kStreamed,
};

// One operation the gateway forwards.
struct ApiOperation {
  // After the route segment (kDeployment), /openai/v1/ or /openai/; the first '*' segment is
  // an object id starting with `id_prefix`, a later one any segment (an item of the object).
  absl::string_view path;
  uint8_t methods = kPost;
  RouteSource source = RouteSource::kBodyModel;
  absl::string_view id_prefix;  // for '*'
  // A 200 answer creates an object whose id starts with this (the agent pins it); empty: none.
  absl::string_view creates;
  BodyHandling body = BodyHandling::kBuffered;
};

struct ApiPath {
  ApiSurface surface = ApiSurface::kNotFound;
  const ApiOperation* operation = nullptr;  // kDeployment and kV1
  // kDeployment: the {route} segment; kQueryModel / kQueryDeployment: the parameter's value,
  // percent-decoded (empty when absent).
  std::string route;
  // kDeployment: what follows it, query included. A view into the target ClassifyTarget was
  // given (the request's head, which outlives the request's handling): a copy was an
  // allocation per request.
  absl::string_view suffix;
  std::string object_id;                    // RouteSource::kObjectOwner: the '*' segment
};

// `method` picks between operations that share a path (POST /assistants names a model, GET
// lists them); an operation matching the path but not the method is returned all the same, so
// the caller can answer 405 with the methods it allows.
ApiPath ClassifyTarget(absl::string_view target, absl::string_view method = "");

// Whether `method` may be used on the operation (its table entry says).
bool MethodAllowed(const ApiOperation& operation, absl::string_view method);
// The methods the operation allows, for an error message ("POST", "GET or DELETE").
std::string AllowedMethods(const ApiOperation& operation);

}  // namespace spillway
