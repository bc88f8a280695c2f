// `spillwayctl load`: drives an Azure OpenAI-compatible endpoint (an agent, a mock, a real
// deployment) with a declared traffic shape and reports what it saw (issue 21).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace spillway::load {

// Runs `spillwayctl load ARGS...` (the arguments after the word "load") and returns the exit
// code: 0 when the run completed, 2 for a bad command line or a --chart file that cannot be
// written, 3 when the target could not be reached at all. The report goes to `out`, progress
// and errors to `err`; the chart (--chart) to its file once the run is over.
int RunLoadCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace spillway::load
