// Classifies a request target into the surfaces the agent serves: Azure OpenAI's
// deployment-scoped API, the /openai/v1 API, and the agent's own endpoints.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

enum class ApiSurface {
  kDeployment,  // /openai/deployments/{route}/...
  kV1,          // /openai/v1/... with the model in the body
  kHealthz,
  kReadyz,
  kStatus,
  kMetrics,        // Prometheus
  kUnknownOpenAi,  // another /openai/... path (stateful APIs: not served yet)
  kNotFound,
};

struct ApiPath {
  ApiSurface surface = ApiSurface::kNotFound;
  std::string route;   // kDeployment: the {route} segment
  std::string suffix;  // kDeployment: what follows it, query included
};

ApiPath ClassifyTarget(absl::string_view target);

}  // namespace spillway
