// Error bodies in Azure OpenAI's shape, {"error":{"code":...,"message":...}}, so SDKs and
// operators read the gateway's own errors exactly as they read the service's.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

// `code` is Azure's string code ("429", "DeploymentNotFound", ...); both are JSON-escaped.
std::string AzureErrorBody(absl::string_view code, absl::string_view message);

}  // namespace spillway
