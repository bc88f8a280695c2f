// See sse.h.
#include "tests/support/sse.h"

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace spillway::test {
namespace {

// Finds the end of the next event: a blank line, with LF or CRLF line endings.
size_t EventEnd(absl::string_view text, size_t* separator) {
  const size_t lf = text.find("\n\n");
  const size_t crlf = text.find("\r\n\r\n");
  if (crlf != absl::string_view::npos && (lf == absl::string_view::npos || crlf < lf)) {
    *separator = 4;
    return crlf;
  }
  *separator = 2;
  return lf;
}

// Appends the event's data to `out`; false when it has none.
bool EventData(absl::string_view event, std::string* out) {
  bool any = false;
  for (absl::string_view line : absl::StrSplit(event, '\n')) {
    absl::ConsumeSuffix(&line, "\r");
    if (!absl::ConsumePrefix(&line, "data:")) {
      continue;
    }
    absl::ConsumePrefix(&line, " ");
    if (any) {
      out->push_back('\n');
    }
    out->append(line.data(), line.size());
    any = true;
  }
  return any;
}

}  // namespace

std::vector<std::string> ParseSseData(absl::string_view body) {
  std::vector<std::string> payloads;
  size_t separator = 0;
  for (size_t end = EventEnd(body, &separator); end != absl::string_view::npos;
       end = EventEnd(body, &separator)) {
    std::string data;
    if (EventData(body.substr(0, end), &data)) {
      payloads.push_back(std::move(data));
    }
    body.remove_prefix(end + separator);
  }
  return payloads;
}

void SseCollector::Feed(absl::string_view piece, absl::Time arrival) {
  pending_.append(piece.data(), piece.size());
  size_t separator = 0;
  for (size_t end = EventEnd(pending_, &separator); end != std::string::npos;
       end = EventEnd(pending_, &separator)) {
    std::string data;
    if (EventData(absl::string_view(pending_).substr(0, end), &data)) {
      events_.push_back({std::move(data), arrival});
    }
    pending_.erase(0, end + separator);
  }
}

}  // namespace spillway::test
