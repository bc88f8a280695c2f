// See control.h.
#include "tests/mock_aoai/control.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/assistants_store.h"
#include "tests/mock_aoai/faults.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

void Respond(std::string& out, int status, absl::string_view json) {
  AppendStatusLine(out, status);
  AppendBody(out, "application/json", json);
}

}  // namespace

void HandleControl(MockState& state, ControlAction action, absl::string_view body,
                   std::string& out) {
  switch (action) {
    case ControlAction::kGetStats: {
      StoreCounts responses;
      responses.stored = static_cast<int64_t>(state.responses().size());
      responses.evicted = state.responses().evicted();
      StoreCounts conversations;
      conversations.stored = static_cast<int64_t>(state.conversations().size());
      conversations.evicted = state.conversations().evicted();
      conversations.items_evicted = state.conversations().items_evicted();
      std::string json = state.stats().ToJson(responses, conversations);
      // The files APIs' sections (files_store.h) and the Assistants API's stores go in before
      // the closing brace.
      json.pop_back();
      json += ',';
      state.files_apis().AppendStatsJson(json);
      absl::StrAppend(&json, ",", AssistantsCountsJson(state.assistants(), state.threads()), "}");
      Respond(out, 200, json);
      return;
    }
    case ControlAction::kListFaults:
      Respond(out, 200, state.faults().ListJson());
      return;
    case ControlAction::kAddFault: {
      absl::StatusOr<FaultSpec> fault = ParseFaultJson(body);
      if (!fault.ok()) {
        std::string error;
        AppendAzureError(error, "BadRequest", fault.status().message());
        Respond(out, 400, error);
        return;
      }
      const uint64_t id = state.faults().Add(*fault);
      Respond(out, 200, absl::StrCat("{\"id\":", id, ",\"fault\":", FaultToJson(*fault), "}"));
      return;
    }
    case ControlAction::kClearFaults:
      state.faults().Clear();
      Respond(out, 200, "{\"cleared\":true}");
      return;
    case ControlAction::kReset:
      state.Reset();
      Respond(out, 200, "{\"reset\":true}");
      return;
  }
}

}  // namespace spillway::mock
