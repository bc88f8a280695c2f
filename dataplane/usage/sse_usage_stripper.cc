// See sse_usage_stripper.h. Events are split at blank lines with LF, CRLF or CR endings, as
// the SSE specification allows; only events whose data mentions "usage" are looked into,
// with a scan of the top-level JSON members that allocates nothing. Reads with LF endings
// alone (every backend seen) are not split line by line: the last blank line marks what can
// go, one key search covers all of it, and only an event the key is in is cut out and looked
// at. Per 50-event stream that took the stripper from 34k to 8.4k instructions (callgrind).
#include "dataplane/usage/sse_usage_stripper.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "dataplane/usage/usage_key.h"

namespace spillway {
namespace {

constexpr absl::string_view kWhitespace = " \t\r\n";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The first non-whitespace at or after `i`, or npos. absl's find_first_not_of builds a
// lookup table per call: ~100 instructions, dozens of calls per usage event (callgrind).
std::size_t SkipSpace(absl::string_view json, std::size_t i) {
  while (i < json.size() && IsSpace(json[i])) {
    ++i;
  }
  return i < json.size() ? i : absl::string_view::npos;
}
// The most of one event held back. The events the agent edits are a few hundred bytes; a
// longer one passes as it came, so a backend that never ends an event costs a bounded buffer.
constexpr std::size_t kMaxHeldEvent = 64 * 1024;

// Skips a JSON string starting at json[i] == '"'; returns the index after its closing quote.
// memchr to each quote, then a look back over the backslashes before it (an odd count escapes
// it): a byte-by-byte walk was ~5 instructions a byte, and the usage event is walked whole.
std::size_t SkipString(absl::string_view json, std::size_t i) {
  const char* const data = json.data();
  for (++i; i < json.size();) {
    const char* quote = static_cast<const char*>(std::memchr(data + i, '"', json.size() - i));
    if (quote == nullptr) {
      return absl::string_view::npos;
    }
    const std::size_t at = static_cast<std::size_t>(quote - data);
    std::size_t backslashes = 0;
    while (at - backslashes > i && data[at - backslashes - 1] == '\\') {
      ++backslashes;
    }
    if (backslashes % 2 == 0) {
      return at + 1;
    }
    i = at + 1;
  }
  return absl::string_view::npos;
}

// Skips the JSON value starting at json[i]; returns the index after it.
std::size_t SkipValue(absl::string_view json, std::size_t i) {
  if (i >= json.size()) {
    return absl::string_view::npos;
  }
  if (json[i] == '"') {
    return SkipString(json, i);
  }
  if (json[i] == '{' || json[i] == '[') {
    int depth = 0;
    for (; i < json.size(); ++i) {
      const char c = json[i];
      if (c == '"') {
        i = SkipString(json, i);
        if (i == absl::string_view::npos) {
          return i;
        }
        --i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return absl::string_view::npos;
  }
  while (i < json.size() && !IsSpace(json[i]) && json[i] != ',' && json[i] != '}' &&
         json[i] != ']') {
    ++i;
  }
  return i;
}

struct Member {
  std::size_t key = absl::string_view::npos;  // the key's opening quote
  std::size_t value = 0;
  std::size_t value_end = 0;
  bool found() const { return key != absl::string_view::npos; }
};

// The top-level member `name` of the JSON object `json`, if the text is well formed up to it.
Member FindMember(absl::string_view json, absl::string_view name) {
  Member member;
  std::size_t i = SkipSpace(json, 0);
  if (i == absl::string_view::npos || json[i] != '{') {
    return member;
  }
  ++i;
  for (;;) {
    i = SkipSpace(json, i);
    if (i == absl::string_view::npos || json[i] != '"') {
      return member;  // '}' (no such member) or malformed
    }
    const std::size_t key = i;
    i = SkipString(json, i);
    if (i == absl::string_view::npos) {
      return member;
    }
    const absl::string_view key_text = json.substr(key + 1, i - key - 2);
    i = SkipSpace(json, i);
    if (i == absl::string_view::npos || json[i] != ':') {
      return member;
    }
    const std::size_t value = SkipSpace(json, i + 1);
    const std::size_t value_end = SkipValue(json, value);
    if (value_end == absl::string_view::npos) {
      return member;
    }
    if (key_text == name) {
      member.key = key;
      member.value = value;
      member.value_end = value_end;
      return member;
    }
    i = SkipSpace(json, value_end);
    if (i == absl::string_view::npos || json[i] != ',') {
      return member;
    }
    ++i;
  }
}

// The payload of the event's only `data:` line (one leading space removed), with its
// offset in `event`; empty when the event has no data line or several.
absl::string_view SingleData(absl::string_view event, std::size_t* offset) {
  absl::string_view data;
  int lines = 0;
  std::size_t start = 0;
  while (start < event.size()) {
    std::size_t end = event.size();
    if (const void* lf = std::memchr(event.data() + start, '\n', end - start)) {
      end = static_cast<std::size_t>(static_cast<const char*>(lf) - event.data());
    }
    if (const void* cr = std::memchr(event.data() + start, '\r', end - start)) {
      end = static_cast<std::size_t>(static_cast<const char*>(cr) - event.data());
    }
    absl::string_view line = event.substr(start, end - start);
    if (absl::StartsWith(line, "data:")) {
      ++lines;
      line.remove_prefix(5);
      if (absl::StartsWith(line, " ")) {
        line.remove_prefix(1);
      }
      data = line;
      *offset = static_cast<std::size_t>(line.data() - event.data());
    }
    start = end + (event.substr(end, 2) == "\r\n" ? 2 : 1);
  }
  return lines == 1 ? data : absl::string_view();
}

bool IsEmptyArray(absl::string_view value) {
  if (value.size() < 2 || value.front() != '[' || value.back() != ']') {
    return false;
  }
  value.remove_prefix(1);
  value.remove_suffix(1);
  return SkipSpace(value, 0) == absl::string_view::npos;
}

// Where the event that contains input[at] ends, the blank line ("\n\n") included, in a read
// with no CR; npos when it does not end in `input`.
std::size_t EventEnd(absl::string_view input, std::size_t at) {
  const char* const data = input.data();
  const std::size_t n = input.size();
  while (at < n) {
    const char* lf = static_cast<const char*>(std::memchr(data + at, '\n', n - at));
    if (lf == nullptr) {
      return absl::string_view::npos;
    }
    at = static_cast<std::size_t>(lf - data) + 1;
    if (at < n && data[at] == '\n') {
      return at + 1;
    }
  }
  return absl::string_view::npos;
}

// Where the event that contains input[at] starts, in a read with no CR: after the last blank
// line before `at`, or at `first`, where an event is known to start (so a LF there is a blank
// line). With `at` the input's size: the end of the last whole event, or `first` if none.
std::size_t EventStart(absl::string_view input, std::size_t first, std::size_t at) {
  const char* const data = input.data();
  while (at > first) {
    const char* lf = static_cast<const char*>(memrchr(data + first, '\n', at - first));
    if (lf == nullptr) {
      break;
    }
    at = static_cast<std::size_t>(lf - data);
    if (at == first || data[at - 1] == '\n') {
      return at + 1;
    }
  }
  return first;
}

}  // namespace

// What to do with one complete event.
SseUsageStripper::Edit SseUsageStripper::Inspect(absl::string_view event) {
  Edit edit;
  // Most events never mention usage: one search and they pass untouched.
  if (FindUsageKey(event) == absl::string_view::npos) {
    return edit;
  }
  std::size_t offset = 0;
  const absl::string_view data = SingleData(event, &offset);
  const Member usage = FindMember(data, "usage");
  if (!usage.found()) {
    return edit;
  }
  const absl::string_view value = data.substr(usage.value, usage.value_end - usage.value);
  if (!value.empty() && value.front() == '{') {
    const Member choices = FindMember(data, "choices");
    if (choices.found() &&
        IsEmptyArray(data.substr(choices.value, choices.value_end - choices.value))) {
      edit.action = Edit::kDrop;  // the usage-only event: the client never asked for it
    }
  } else if (value == "null") {
    // Drop the member with one of its commas, so the JSON stays valid.
    std::size_t from = usage.key;
    std::size_t to = usage.value_end;
    const std::size_t before = data.find_last_not_of(kWhitespace, usage.key - 1);
    if (before != absl::string_view::npos && data[before] == ',') {
      from = before;
    } else if (const std::size_t after = SkipSpace(data, to);
               after != absl::string_view::npos && data[after] == ',') {
      to = std::min(SkipSpace(data, after + 1), data.size());
    }
    edit.action = Edit::kCut;
    edit.from = offset + from;
    edit.to = offset + to;
  }
  return edit;
}

absl::string_view SseUsageStripper::Filter(absl::string_view input, bool end, ReadScan scan) {
  out_.clear();
  if (!cr_pending_ && !oversized_ &&
      (!scan.may_have_cr || input.empty() ||
       std::memchr(input.data(), '\r', input.size()) == nullptr)) {
    return FilterLf(input, end, scan.first_key);
  }
  return FilterLines(input, end);
}

void SseUsageStripper::AppendEdited(absl::string_view event, const Edit& edit) {
  if (edit.action == Edit::kDrop) {
    ++stripped_events_;
  } else if (edit.action == Edit::kCut) {
    out_.append(event.data(), edit.from);
    out_.append(event.data() + edit.to, event.size() - edit.to);
  } else {
    out_.append(event.data(), event.size());
  }
}

absl::string_view SseUsageStripper::FilterLf(absl::string_view input, bool end,
                                             std::size_t first_key) {
  const std::size_t n = input.size();
  std::size_t from = 0;  // input before `from` is in out_ already
  bool copying = false;
  if (!event_.empty()) {
    // The event held back from the last read ends at the first blank line.
    const std::size_t stop = line_empty_ && n > 0 && input[0] == '\n' ? 1 : EventEnd(input, 0);
    if (stop == absl::string_view::npos) {
      if (end || event_.size() + n > kMaxHeldEvent) {
        // Unfinished at the end of the stream, or too long to be edited: out as it came.
        out_.swap(event_);
        out_.append(input.data(), n);
        event_.clear();
        oversized_ = !end;
        line_empty_ = end || input.empty() ? line_empty_ : input.back() == '\n';
        return out_;
      }
      event_.append(input.data(), n);
      line_empty_ = input.empty() ? line_empty_ : input.back() == '\n';
      return absl::string_view();
    }
    event_.append(input.data(), stop);
    AppendEdited(event_, Inspect(event_));
    event_.clear();
    line_empty_ = true;
    copying = true;
    from = stop;
  }
  // Whole events up to the last blank line; of those, only the ones that mention the key are
  // looked into (a first search over them all finds none in most reads).
  const std::size_t whole = EventStart(input, from, n);
  std::size_t passed = from;  // input[from, passed) goes out unchanged; an event starts there
  // No key lies whole in input before `search` (the caller's scan said where the first is).
  std::size_t search = first_key == absl::string_view::npos ? whole : std::max(from, first_key);
  while (search < whole) {
    const std::size_t found = FindUsageKey(input.substr(search, whole - search));
    if (found == absl::string_view::npos) {
      break;
    }
    const std::size_t key = search + found;
    const std::size_t start = EventStart(input, passed, key);
    const std::size_t stop = EventEnd(input, key);  // at or before `whole`
    const absl::string_view event = input.substr(start, stop - start);
    const Edit edit = Inspect(event);
    if (edit.action != Edit::kKeep) {
      if (!copying) {
        out_.reserve(n);  // one allocation for the read, not one per growth
        out_.assign(input.data(), start);
        copying = true;
      } else {
        out_.append(input.data() + from, start - from);
      }
      AppendEdited(event, edit);
      from = stop;
    }
    passed = stop;
    search = stop;
  }
  // The unfinished event after them is held back, unless the stream is over or it is too long.
  const absl::string_view rest = input.substr(whole);
  const bool hold = !end && !rest.empty() && rest.size() <= kMaxHeldEvent;
  const std::size_t forwarded = hold ? whole : n;
  if (hold) {
    event_.assign(rest.data(), rest.size());
  }
  oversized_ = !end && !rest.empty() && !hold;
  line_empty_ = rest.empty() || rest.back() == '\n';
  if (!copying) {
    return input.substr(0, forwarded);
  }
  out_.append(input.data() + from, forwarded - from);
  return out_;
}

absl::string_view SseUsageStripper::FilterLines(absl::string_view input, bool end) {
  // While every event is kept as it came and nothing was held back from an earlier read,
  // the output is a prefix of `input` and nothing is copied; out_ is used from the first
  // event that differs.
  bool copying = !event_.empty();
  std::size_t start = 0;  // where the current event's bytes in `input` begin
  auto switch_to_copying = [&] {
    if (!copying) {
      out_.assign(input.data(), start);
      copying = true;
    }
  };
  // The current event ends at input[stop]; `inspect` false forwards it as it is.
  auto finish_event = [&](std::size_t stop, bool inspect) {
    absl::string_view event = input.substr(start, stop - start);
    if (!event_.empty()) {
      event_.append(event.data(), event.size());
      event = event_;
    }
    const Edit edit = inspect ? Inspect(event) : Edit();
    if (edit.action != Edit::kKeep) {
      switch_to_copying();
    }
    if (copying) {
      AppendEdited(event, edit);
    }
    event_.clear();
    start = stop;
  };

  const char* const data = input.data();
  const std::size_t n = input.size();
  std::size_t i = 0;
  if (cr_pending_ && n > 0) {
    cr_pending_ = false;
    const bool was_blank = blank_cr_;
    blank_cr_ = false;
    if (data[0] == '\n') {
      i = 1;  // the LF of a CRLF
    }
    if (was_blank) {
      finish_event(i, !oversized_);
      oversized_ = false;
    }
  }
  // The next CR, searched for again only once passed: most streams end lines with LF alone,
  // and one search of the input replaces one per line.
  auto next_cr = [&](std::size_t from) {
    const char* cr = static_cast<const char*>(std::memchr(data + from, '\r', n - from));
    return cr == nullptr ? n : static_cast<std::size_t>(cr - data);
  };
  std::size_t cr_at = i < n ? next_cr(i) : n;
  while (i < n) {
    if (cr_at < i) {
      cr_at = next_cr(i);
    }
    // Jump to the next line terminator: memchr, not a loop over every byte.
    const char* lf = static_cast<const char*>(std::memchr(data + i, '\n', cr_at - i));
    const std::size_t at = lf == nullptr ? cr_at : static_cast<std::size_t>(lf - data);
    if (at > i) {
      line_empty_ = false;
    }
    if (at == n) {
      break;
    }
    const bool blank = line_empty_;
    line_empty_ = true;
    i = at + 1;
    if (data[at] == '\r') {
      if (i == n) {
        cr_pending_ = true;  // an LF in the next read may belong to this CR
        blank_cr_ = blank;
        break;
      }
      if (data[i] == '\n') {
        ++i;
      }
    }
    if (blank) {
      finish_event(i, !oversized_);
      oversized_ = false;
    }
  }
  if (end) {
    if (start < n || !event_.empty()) {
      // A blank line cut by the end of the stream ends the event; an unfinished event is
      // forwarded as it came.
      finish_event(n, blank_cr_ && !oversized_);
    }
    cr_pending_ = blank_cr_ = oversized_ = false;
  } else if (start < n && (oversized_ || event_.size() + (n - start) > kMaxHeldEvent)) {
    finish_event(n, false);  // too long to be edited: what came of it goes out now
    oversized_ = true;
  } else if (start < n) {
    event_.append(data + start, n - start);  // held back; the output stays a prefix
  }
  return copying ? absl::string_view(out_) : input.substr(0, start);
}

}  // namespace spillway
