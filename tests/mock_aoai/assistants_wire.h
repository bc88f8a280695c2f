// The Assistants API (v2) on the wire: the assistant, thread, message, run and run step objects,
// list pages, deleted objects, and a run's SSE events. Shapes follow OpenAI's v2 reference, which
// Azure's /openai/assistants (2024-05-01-preview) serves as is.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/assistants_request.h"
#include "tests/mock_aoai/assistants_store.h"
#include "tests/mock_aoai/event_stream.h"
#include "tests/mock_aoai/list_query.h"

namespace spillway::mock {

// "<prefix><24 random alphanumerics>", as the service's "asst_...", "thread_...", "msg_...".
std::string NewObjectId(absl::string_view prefix);

// {"id","object":"assistant","created_at","name","description","model","instructions","tools",
//  "tool_resources","metadata","top_p","temperature","response_format"}: defaults, then `fields`
// (ParseAssistantFields) over them; a modify applies its fields the same way.
boost::json::object AssistantObject(absl::string_view id, int64_t created_at,
                                    const boost::json::object& fields);
void ApplyFields(boost::json::object& object, const boost::json::object& fields);

// {"id","object":"thread","created_at","metadata","tool_resources"}
boost::json::object ThreadObject(const ThreadInfo& thread);

// {"id","object":"thread.message","created_at","assistant_id","thread_id","run_id","status",
//  "incomplete_details","incomplete_at","completed_at","role","content","attachments","metadata"}
// for a message a client created.
boost::json::object MessageObject(const MessageInput& message, absl::string_view id,
                                  absl::string_view thread_id, int64_t created_at);

// {"id":...,"object":"<object>","deleted":true}; object: "assistant.deleted", "thread.deleted"...
std::string DeletedAssistantsObject(absl::string_view id, absl::string_view object);

// {"object":"list","data":[...],"first_id","last_id","has_more"} of `oldest_first` in the order
// `list` asks, after `list.after` or, with `before`, the page just before that object.
std::string ObjectPage(const boost::json::array& oldest_first, const ListQuery& list,
                       absl::string_view before);

// What a run is, decided when it is created (the mock runs it at once).
struct RunSpec {
  std::string run_id;
  std::string step_id;
  std::string message_id;  // the assistant's reply
  std::string thread_id;
  std::string assistant_id;
  std::string model;  // the deployment
  std::optional<std::string> instructions;
  boost::json::array tools;
  boost::json::object metadata;
  std::optional<int64_t> max_prompt_tokens;
  std::optional<int64_t> max_completion_tokens;
  boost::json::value temperature = 1;  // the run's, else the assistant's
  boost::json::value top_p = 1;
  int64_t created_at = 0;
  int64_t message_number = 1;  // the reply's place in its thread, from 1
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool truncated = false;  // cut by max_completion_tokens: "incomplete"
};

// A run's objects as they end, and the reply's text one piece per output token: "Message N of
// thread_...." and then the completions' words.
struct RunFacts {
  std::optional<boost::json::object> thread;  // created with the run (thread-and-run)
  boost::json::object run;
  boost::json::object step;
  boost::json::object message;
  std::vector<std::string> pieces;
};
RunFacts MakeRunFacts(const RunSpec& spec);

// A streamed run: `event: <type>\ndata: <json>\n\n` for thread.created (thread-and-run only),
// thread.run.created, thread.run.queued, thread.run.in_progress, thread.run.step.created,
// thread.run.step.in_progress, thread.message.created, thread.message.in_progress, one
// thread.message.delta per output token, thread.message.completed (or .incomplete),
// thread.run.step.completed, thread.run.completed (or .incomplete, with the usage), then
// `event: done\ndata: [DONE]`.
class AssistantsStream final : public EventStream {
 public:
  explicit AssistantsStream(std::shared_ptr<const RunFacts> facts);

  bool Done() const override { return next_ >= total_; }
  bool NextStartsLaterToken() const override;
  void AppendNext(std::string& out) override;
  bool usage_sent() const override { return usage_sent_; }
  int64_t events_sent() const override { return next_; }

 private:
  // Events 0-6 after thread.created: the run and its step started, the message begun.
  void AppendLead(std::string& out, int64_t step) const;

  std::shared_ptr<const RunFacts> facts_;
  int64_t lead_;  // events before the first delta
  int64_t total_;
  int64_t next_ = 0;
  bool usage_sent_ = false;
};

}  // namespace spillway::mock
