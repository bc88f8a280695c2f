// Fuzzes the request-target classifier: any bytes a client sends as a target must classify
// without a crash, and a deployment route it extracts is one clean path segment.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "dataplane/routing/api_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view target(reinterpret_cast<const char*>(data), size);
  const spillway::ApiPath path = spillway::ClassifyTarget(target);
  if (path.surface == spillway::ApiSurface::kDeployment &&
      (path.route.empty() || path.route.find('/') != std::string::npos)) {
    std::abort();  // a route must be one non-empty segment
  }
  return 0;
}
