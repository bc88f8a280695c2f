// Classifies a request target into what the agent serves: Azure OpenAI operations it knows
// (a fixed table: path, methods, where the route is named), and its own endpoints. Nothing
// else reaches a backend: an unknown operation is 404 before any backend is touched, and a
// path that is not in normal form (percent-encoding, dot or empty segments) is refused.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

enum class ApiSurface {
  kDeployment,  // /openai/deployments/{route}/<operation>
  kV1,          // /openai/v1/<operation> with the model in the body
  kHealthz,
  kReadyz,
  kStatus,
  kMetrics,        // Prometheus
  kUnknownOpenAi,  // another /openai/... path (stateful APIs: not served yet)
  kBadPath,        // not in normal form: refused, never matched
  kNotFound,
};

// One operation the gateway forwards.
struct ApiOperation {
  absl::string_view path;  // after the route segment (kDeployment) or after /openai/v1
  bool post_only = true;   // every operation served today is a POST
};

struct ApiPath {
  ApiSurface surface = ApiSurface::kNotFound;
  const ApiOperation* operation = nullptr;  // kDeployment and kV1
  std::string route;                        // kDeployment: the {route} segment
  std::string suffix;                       // kDeployment: what follows it, query included
};

ApiPath ClassifyTarget(absl::string_view target);

// Whether `method` may be used on the operation (its table entry says).
bool MethodAllowed(const ApiOperation& operation, absl::string_view method);

}  // namespace spillway
