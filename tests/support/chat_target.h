// The Azure OpenAI path of a chat completion, shared by the agent's and the control plane's
// end-to-end tests.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace spillway::test {

// The target for a chat completion on `route` (a deployment name, as the agent's routes are).
inline std::string ChatTarget(const std::string& route) {
  return absl::StrCat("/openai/deployments/", route, "/chat/completions?api-version=2024-10-21");
}

}  // namespace spillway::test
