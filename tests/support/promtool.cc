// See promtool.h. The body goes through a file (not a pipe both ways) to keep it simple.
#include "tests/support/promtool.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace spillway::test {

PromtoolRun PromtoolCheckMetrics(const std::string& promtool, const std::string& metrics,
                                 const std::string& scratch_file) {
  PromtoolRun run;
  {
    std::ofstream out(scratch_file, std::ios::binary | std::ios::trunc);
    out << metrics;
    if (!out.good()) {
      run.output = absl::StrCat("cannot write ", scratch_file);
      return run;
    }
  }
  const std::string command =
      absl::StrCat("'", promtool, "' check metrics < '", scratch_file, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    run.output = absl::StrCat("cannot run ", command);
    return run;
  }
  char buffer[4096];
  std::size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    run.output.append(buffer, n);
  }
  const int status = pclose(pipe);
  run.exit_code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace spillway::test
