// Fuzzes what reads backend streams: the usage scanner and the SSE usage stripper, fed the
// same bytes cut into pieces at points the input chooses (a backend's bytes arrive in any
// split). Neither may crash, the stripper's output never exceeds its input and does not depend
// on how the stream was cut (its fast path for LF-only reads and its line-by-line one agree).
// The "usage" key search both use must find what std::string's own search finds.
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
  std::string out;
  for (size_t at = 0; at < stream.size(); at += piece) {
    const absl::string_view part = stream.substr(at, piece);
    const bool end = at + piece >= stream.size();
    scanner.Feed(part);
    in += part.size();
    const absl::string_view relayed = stripper.Filter(part, end);
    out.append(relayed.data(), relayed.size());
  }
  (void)scanner.Finish();
  if (out.size() > in) {
    std::abort();
  }
  // Inputs are shorter than the stripper's hold-back cap, so one read must give the same bytes.
  spillway::SseUsageStripper whole;
  if (whole.Filter(stream, true) != out) {
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
