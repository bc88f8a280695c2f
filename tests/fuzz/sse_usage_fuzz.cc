// Fuzzes what reads backend streams: the usage scanner and the SSE usage stripper, fed the
// same bytes cut into pieces at points the input chooses (a backend's bytes arrive in any
// split). Neither may crash, and the stripper's output never exceeds its input. The "usage"
// key search both use must find what std::string's own search finds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/usage/sse_usage_stripper.h"
#include "dataplane/usage/usage_key.h"
#include "dataplane/usage/usage_scanner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  // The first byte picks the piece size, the rest is the stream.
  const size_t piece = 1 + data[0] % 64;
  const absl::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  spillway::UsageScanner scanner;
  spillway::SseUsageStripper stripper;
  size_t in = 0;
  size_t out = 0;
  for (size_t at = 0; at < stream.size(); at += piece) {
    const absl::string_view part = stream.substr(at, piece);
    const bool end = at + piece >= stream.size();
    scanner.Feed(part);
    in += part.size();
    out += stripper.Filter(part, end).size();
  }
  (void)scanner.Finish();
  if (out > in) {
    std::abort();
  }
  const std::string text(stream);
  const std::string key(spillway::kUsageKey);
  const size_t end = data[0] % (text.size() + 1);  // where the backward search starts
  if (spillway::FindUsageKey(stream) != text.find(key) ||
      spillway::FindLastUsageKey(stream, end) !=
          (end == 0 ? std::string::npos : text.rfind(key, end - 1))) {
    std::abort();
  }
  return 0;
}
