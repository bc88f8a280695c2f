// A streamed answer as the sessions pace it: a sequence of SSE events produced one at a time,
// so neither HTTP/1 nor HTTP/2 holds a prebuilt body. Chat/text completions (SseStream) and the
// Responses API (ResponsesStream) differ only in what the events say.
#pragma once

#include <cstdint>
#include <string>

namespace spillway::mock {

class EventStream {
 public:
  virtual ~EventStream() = default;

  virtual bool Done() const = 0;
  // Whether the next event is the first of an output token after the first: the one a
  // per-token latency delays.
  virtual bool NextStartsLaterToken() const = 0;
  // Appends the next event, complete with its blank-line terminator.
  virtual void AppendNext(std::string& out) = 0;
  // Whether the event carrying the usage went out (the stats count only reported usage).
  virtual bool usage_sent() const = 0;
  virtual int64_t events_sent() const = 0;
};

}  // namespace spillway::mock
