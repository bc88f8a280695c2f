// Which Assistants API call a method and path name (the path from "/assistants" or "/threads"
// on), the operation names its 429s use, and the answers its handlers share.
#pragma once

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/openai_error.h"

namespace spillway::mock {

enum class AssistantsAction {
  kCreateAssistant,
  kListAssistants,
  kGetAssistant,
  kModifyAssistant,
  kDeleteAssistant,
  kCreateThread,
  kGetThread,
  kModifyThread,
  kDeleteThread,
  kCreateMessage,
  kListMessages,
  kGetMessage,
  kModifyMessage,
  kDeleteMessage,
  kCreateRun,
  kCreateThreadAndRun,
  kListRuns,
  kGetRun,
  kModifyRun,
  kCancelRun,
  kListSteps,
  kGetStep,
  kNone,
};

struct AssistantsCall {
  AssistantsAction action = AssistantsAction::kNone;
  absl::string_view id;     // the assistant or the thread
  absl::string_view child;  // the message or the run
  absl::string_view step;
};

// Views into `path`.
AssistantsCall MatchAssistantsCall(absl::string_view method, absl::string_view path);

// Azure-style operation names ("Assistants_Create", "Runs_Create"...) for 429 texts.
absl::string_view AssistantsOperation(AssistantsAction action);

// An OpenAI-shaped error, recorded in the stats under `deployment` ("": none).
void FailOpenAi(ApiAnswer& answer, const OpenAiError& error, absl::string_view deployment = "");
// 200 with a JSON body, recorded in the stats under no deployment.
void SucceedJson(ApiAnswer& answer, absl::string_view body, absl::string_view fault);

}  // namespace spillway::mock
