// The Responses API on the wire: the Response object at each status, its SSE events, the
// deleted object and input_items pages (errors: openai_error.h). Everything is a pure function
// of a response's facts and status, so a stored response's stream can be replayed (GET
// ?stream=true&starting_after=N) event for event without keeping its events.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/event_stream.h"
#include "tests/mock_aoai/openai_error.h"
#include "tests/mock_aoai/responses_store.h"

namespace spillway::mock {

// {"id":"resp_...","object":"response","created_at":...,"status":...,"background":...,
//  "completed_at":...,"conversation":{"id":"conv_..."} (null outside a conversation),
//  "error":null,"incomplete_details":...,"instructions":...,"max_output_tokens":...,
//  "model":...,"output":[message],"parallel_tool_calls":true,"previous_response_id":...,
//  "reasoning":{...},"store":...,"temperature":1.0,"text":{...},"tool_choice":"auto",
//  "tools":[],"top_p":1.0,"truncation":"disabled","usage":{...},"user":null,"metadata":{}}.
// Output and usage only once generation ended (completed or incomplete); `completed_at` is
// used then.
boost::json::object ResponseObject(const ResponseFacts& facts, ResponseStatus status,
                                   int64_t completed_at);

// {"id":"resp_...","object":"response","deleted":true}
std::string DeletedObject(absl::string_view id);

// {"object":"list","data":[...],"first_id":...,"last_id":...,"has_more":...}: up to `limit`
// items, newest first unless `ascending`, starting after the item `after` when given.
std::string InputItemsPage(const boost::json::array& items, bool ascending, int64_t limit,
                           absl::string_view after);

// The response's one output message once generation ended ("completed", or "incomplete" when
// max_output_tokens cut it), as `output` and a conversation's items show it.
boost::json::object OutputMessageItem(const ResponseFacts& facts);

// The events of a streamed response, each `event: <type>\ndata: <json>\n\n` with a
// sequence_number: response.created (status "in_progress", or "queued" then
// response.queued for a background response), response.in_progress,
// response.output_item.added, response.content_part.added, one response.output_text.delta per
// output token, response.output_text.done, response.content_part.done,
// response.output_item.done, and response.completed (or response.incomplete) with the usage.
// A cancelled response replays as response.created, response.queued, response.cancelled.
// No `data: [DONE]`: Responses streams end with the terminal event.
class ResponsesStream final : public EventStream {
 public:
  // The events after sequence number `starting_after` (-1: all), for a response that ends as
  // `final_status` at `completed_at` (unix seconds).
  ResponsesStream(std::shared_ptr<const ResponseFacts> facts, ResponseStatus final_status,
                  int64_t completed_at, int64_t starting_after = -1);

  bool Done() const override { return next_ >= total_; }
  bool NextStartsLaterToken() const override;
  void AppendNext(std::string& out) override;
  bool usage_sent() const override { return usage_sent_; }
  int64_t events_sent() const override { return events_sent_; }
  // Events in the whole stream, whatever `starting_after` skipped.
  int64_t total() const { return total_; }

 private:
  std::shared_ptr<const ResponseFacts> facts_;
  ResponseStatus final_status_;
  int64_t completed_at_;
  int64_t lead_;  // events before response.output_item.added (or the terminal one)
  int64_t total_;
  int64_t next_;
  int64_t events_sent_ = 0;
  bool usage_sent_ = false;
};

}  // namespace spillway::mock
