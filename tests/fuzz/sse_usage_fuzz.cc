// Fuzzes what reads backend streams: the usage scanner and the SSE usage stripper, fed the
// same bytes cut into pieces at points the input chooses (a backend's bytes arrive in any
// split). Neither may crash, the stripper's output never exceeds its input and does not depend
// on how the stream was cut (its fast path for LF-only reads and its line-by-line one agree).
// The scanner's usage does not depend on the cut either. The "usage" key search both use must
// find what std::string's own search finds.
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
    const spillway::ReadScan scan = scanner.Feed(part);
    in += part.size();
    const absl::string_view relayed = stripper.Filter(part, end, scan);
    out.append(relayed.data(), relayed.size());
  }
  if (out.size() > in) {
    std::abort();
  }
  // Inputs are shorter than the stripper's hold-back cap, so one read must give the same bytes.
  spillway::SseUsageStripper whole;
  if (whole.Filter(stream, true) != out) {
    std::abort();
  }
  // The scanner finds the same usage however the stream was cut.
  spillway::UsageScanner whole_scanner;
  whole_scanner.Feed(stream);
  const spillway::Usage cut = scanner.Finish();
  const spillway::Usage uncut = whole_scanner.Finish();
  if (cut.reported != uncut.reported || cut.prompt_tokens != uncut.prompt_tokens ||
      cut.completion_tokens != uncut.completion_tokens || cut.total_tokens != uncut.total_tokens ||
      cut.cached_tokens != uncut.cached_tokens) {
    std::abort();
  }
  const std::string text(stream);
  if (spillway::FindUsageKey(stream) != text.find(std::string(spillway::kUsageKey))) {
    std::abort();
  }
  return 0;
}
