// Fuzzes the multipart "model" field finder an upload on /openai/v1 is routed by: any body, fed
// in growing prefixes as it would arrive, gives the field, an error or "more needed", never a
// crash or a field outside the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "dataplane/routing/multipart_field.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  // The first byte picks the read size; the rest is the body, under boundary "b".
  const std::size_t step = 1 + data[0] % 64;
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  spillway::MultipartFieldFinder finder("b", "model");
  for (std::size_t seen = step;; seen += step) {
    const absl::string_view prefix = body.substr(0, seen);
    auto found = finder.Scan(prefix);
    if (!found.ok()) {
      break;
    }
    if (found->has_value()) {
      if ((*found)->offset + (*found)->size > prefix.size()) {
        std::abort();
      }
      break;
    }
    if (seen >= body.size()) {
      break;
    }
  }
  (void)spillway::MultipartBoundary(body);
  return 0;
}
