// The control endpoint on the mock's own port (no auth): /mock/stats, /mock/faults and
// /mock/reset, for tests to script faults and audit what reached this backend.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

// Writes the whole response (head and JSON body) into `out`.
void HandleControl(MockState& state, ControlAction action, absl::string_view body,
                   std::string& out);

}  // namespace spillway::mock
