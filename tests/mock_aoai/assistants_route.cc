// See assistants_route.h.
#include "tests/mock_aoai/assistants_route.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace spillway::mock {
namespace {

using Action = AssistantsAction;

// `method` on a collection (GET lists, POST creates) or on a member (GET, POST modifies, DELETE).
Action Pick(absl::string_view method, Action get, Action post, Action del = Action::kNone) {
  if (method == "GET") return get;
  if (method == "POST") return post;
  if (method == "DELETE") return del;
  return Action::kNone;
}

AssistantsCall MatchThreadCall(absl::string_view method, const std::vector<absl::string_view>& s) {
  AssistantsCall call;
  const size_t n = s.size();
  if (n == 1) {
    call.action = method == "POST" ? Action::kCreateThread : Action::kNone;
    return call;
  }
  if (n == 2 && s[1] == "runs") {
    call.action = method == "POST" ? Action::kCreateThreadAndRun : Action::kNone;
    return call;
  }
  call.id = s[1];
  if (n == 2) {
    call.action = Pick(method, Action::kGetThread, Action::kModifyThread, Action::kDeleteThread);
    return call;
  }
  if (s[2] == "messages") {
    if (n == 3) call.action = Pick(method, Action::kListMessages, Action::kCreateMessage);
    if (n == 4) {
      call.child = s[3];
      call.action =
          Pick(method, Action::kGetMessage, Action::kModifyMessage, Action::kDeleteMessage);
    }
    return call;
  }
  if (s[2] != "runs") {
    return call;
  }
  if (n == 3) {
    call.action = Pick(method, Action::kListRuns, Action::kCreateRun);
    return call;
  }
  call.child = s[3];
  if (n == 4) {
    call.action = Pick(method, Action::kGetRun, Action::kModifyRun);
  } else if (n == 5 && s[4] == "cancel") {
    call.action = method == "POST" ? Action::kCancelRun : Action::kNone;
  } else if (n == 5 && s[4] == "steps") {
    call.action = method == "GET" ? Action::kListSteps : Action::kNone;
  } else if (n == 6 && s[4] == "steps") {
    call.step = s[5];
    call.action = method == "GET" ? Action::kGetStep : Action::kNone;
  }
  return call;
}

}  // namespace

AssistantsCall MatchAssistantsCall(absl::string_view method, absl::string_view path) {
  path.remove_prefix(1);  // the '/'
  const std::vector<absl::string_view> segments = absl::StrSplit(path, '/');
  for (const absl::string_view segment : segments) {
    if (segment.empty()) {
      return {};
    }
  }
  if (segments[0] == "threads") {
    return MatchThreadCall(method, segments);
  }
  AssistantsCall call;
  if (segments.size() == 1) {
    call.action = Pick(method, Action::kListAssistants, Action::kCreateAssistant);
  } else if (segments.size() == 2) {
    call.id = segments[1];
    call.action =
        Pick(method, Action::kGetAssistant, Action::kModifyAssistant, Action::kDeleteAssistant);
  }
  return call;
}

absl::string_view AssistantsOperation(AssistantsAction action) {
  static constexpr absl::string_view kNames[] = {
      "Assistants_Create", "Assistants_List", "Assistants_Get", "Assistants_Update",
      "Assistants_Delete", "Threads_Create",  "Threads_Get",    "Threads_Update",
      "Threads_Delete",    "Messages_Create", "Messages_List",  "Messages_Get",
      "Messages_Update",   "Messages_Delete", "Runs_Create",    "ThreadAndRun_Create",
      "Runs_List",         "Runs_Get",        "Runs_Update",    "Runs_Cancel",
      "RunSteps_List",     "RunSteps_Get",    "Unknown"};
  return kNames[static_cast<int>(action)];
}

void FailOpenAi(ApiAnswer& answer, const OpenAiError& error, absl::string_view deployment) {
  std::string& body = answer.scratch();
  body.clear();
  AppendOpenAiError(body, error);
  answer.Json(error.status, nullptr, body);
  answer.Record(deployment, error.status, false);
}

void SucceedJson(ApiAnswer& answer, absl::string_view body, absl::string_view fault) {
  answer.Json(200, nullptr, body);
  answer.Record("", 200, false, fault);
}

}  // namespace spillway::mock
