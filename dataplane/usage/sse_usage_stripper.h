// Takes back out of an SSE stream what the agent's own stream_options.include_usage added,
// so the client sees the stream it asked for: the usage-only event (empty `choices`, a
// `usage` object) before [DONE], and `"usage":null` members of the other events. Forwards
// event by event, holding back at most the event still being received; events that pass
// unchanged are not copied.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/usage/usage_key.h"

namespace spillway {

class SseUsageStripper {
 public:
  // The bytes to forward for `input`, valid until the next call. `end`: the stream is over,
  // so whatever is held back goes out too (an unfinished event is forwarded as it came).
  // `scan`: what UsageScanner::Feed found in the same bytes (no "usage" key lies whole in them
  // before scan.first_key; no CR unless scan.may_have_cr), which spares searching them again.
  absl::string_view Filter(absl::string_view input, bool end, ReadScan scan = {});

  // Usage-only events removed so far.
  int stripped_events() const { return stripped_events_; }

 private:
  struct Edit {
    enum Action { kKeep, kDrop, kCut } action = kKeep;
    std::size_t from = 0;  // kCut: the bytes [from, to) of the event go
    std::size_t to = 0;
  };
  // What to do with one whole event (its blank line included).
  static Edit Inspect(absl::string_view event);
  // Appends `event` to out_ as `edit` says.
  void AppendEdited(absl::string_view event, const Edit& edit);
  // A read with no CR in it (nor one pending): events end at "\n\n", so whole runs of events
  // are found with two searches and only those that mention "usage" are looked into.
  absl::string_view FilterLf(absl::string_view input, bool end, std::size_t first_key);
  // Any line endings, line by line.
  absl::string_view FilterLines(absl::string_view input, bool end);

  std::string event_;        // the start of an event held back from earlier reads
  std::string out_;          // what Filter returns when that is not a prefix of its input
  bool line_empty_ = true;   // nothing but the terminator so far on the current line
  bool cr_pending_ = false;  // the previous byte was CR: an LF now belongs to it
  bool blank_cr_ = false;    // ... and that CR ended a blank line (the event is over)
  bool oversized_ = false;   // the current event outgrew the hold-back cap: it passes as is
  int stripped_events_ = 0;
};

}  // namespace spillway
