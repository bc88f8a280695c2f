// Server-sent events as Azure OpenAI streams them (`data: {json}\n\n`), taken apart for
// assertions: the payloads in order, and when each event was complete on the client.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace spillway::test {

// The `data:` payload of each event in `body` (multi-line data joined with '\n'), in order;
// events without data (comments, keep-alives) are skipped, as is an unfinished last event.
std::vector<std::string> ParseSseData(absl::string_view body);

struct SseEvent {
  std::string data;
  absl::Time arrival;  // when the piece completing the event arrived
};

// Feed it the pieces HttpClient::SendStreaming reports.
class SseCollector {
 public:
  void Feed(absl::string_view piece, absl::Time arrival);
  const std::vector<SseEvent>& events() const { return events_; }

 private:
  std::string pending_;
  std::vector<SseEvent> events_;
};

}  // namespace spillway::test
