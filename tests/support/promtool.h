// `promtool check metrics` on a /metrics body, for tests that hold Spillway's output to
// Prometheus' conventions (promtool comes from Debian's prometheus package).
#pragma once

#include <string>

namespace spillway::test {

struct PromtoolRun {
  int exit_code = -1;  // -1: promtool could not be run, or died of a signal
  std::string output;  // its stdout and stderr; empty when it found nothing to say
};

// Runs `promtool` (a path, or a name on $PATH) as `promtool check metrics` with `metrics` on
// its stdin, written first to `scratch_file`.
PromtoolRun PromtoolCheckMetrics(const std::string& promtool, const std::string& metrics,
                                 const std::string& scratch_file);

}  // namespace spillway::test
