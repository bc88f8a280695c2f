// See load_command.h: parse, run, report, and the exit code scripts rely on.
#include "tools/load/load_command.h"

#include <unistd.h>

#include <iostream>

#include "tools/load/load_args.h"
#include "tools/load/load_driver.h"
#include "tools/load/load_report.h"
#include "tools/load/load_stats.h"

namespace spillway::load {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

bool IsHelp(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") return true;
  }
  return false;
}

}  // namespace

int RunLoadCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (IsHelp(args)) {
    out << "usage: spillwayctl " << kLoadUsage << "\n";
    return kExitOk;
  }
  absl::StatusOr<LoadOptions> options = ParseLoadArgs(args);
  if (!options.ok()) {
    err << "spillwayctl: " << options.status().message() << "\n";
    return kExitUsage;
  }
  // The progress line is for a person watching: only on the real stderr, and only a terminal.
  std::ostream* progress = (&err == &std::cerr && isatty(STDERR_FILENO) == 1) ? &err : nullptr;
  LoadStats stats;
  const absl::Status run = RunLoad(*options, stats, progress);
  if (!run.ok()) {
    err << "spillwayctl: load: " << run.message() << "\n";
    return absl::IsUnavailable(run) ? kExitUnreachable : kExitUsage;
  }
  switch (options->output) {
    case LoadOutput::kTable:
      out << RenderLoadTable(*options, stats);
      break;
    case LoadOutput::kJson:
      out << RenderLoadJson(*options, stats);
      break;
    case LoadOutput::kCsv:
      out << RenderLoadCsv(stats);
      break;
  }
  out.flush();
  return kExitOk;
}

}  // namespace spillway::load
