// See load_command.h: parse, run, report, and the exit code scripts rely on.
#include "tools/load/load_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>

#include "tools/load/load_args.h"
#include "tools/load/load_chart.h"
#include "tools/load/load_driver.h"
#include "tools/load/load_report.h"
#include "tools/load/load_stats.h"
#include "tools/load/load_timeline.h"

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
  // The chart's file is opened before anything is sent: a run is not wasted on a bad path.
  std::ofstream chart;
  std::optional<LoadTimeline> timeline;
  if (!options->chart_file.empty()) {
    chart.open(options->chart_file, std::ios::binary | std::ios::trunc);
    if (!chart.is_open()) {
      err << "spillwayctl: load: --chart '" << options->chart_file
          << "': cannot open the file for writing: " << std::strerror(errno) << "\n";
      return kExitUsage;
    }
    timeline.emplace(options->duration);
  }
  // The progress line is for a person watching: only on the real stderr, and only a terminal.
  std::ostream* progress = (&err == &std::cerr && isatty(STDERR_FILENO) == 1) ? &err : nullptr;
  LoadStats stats;
  const absl::Status run = RunLoad(*options, stats, timeline ? &*timeline : nullptr, progress);
  if (!run.ok()) {
    err << "spillwayctl: load: " << run.message() << "\n";
    if (timeline.has_value()) {
      chart.close();
      std::remove(options->chart_file.c_str());  // opened (and emptied) by this run, unused
    }
    return absl::IsUnavailable(run) ? kExitUnreachable : kExitUsage;
  }
  int exit_code = kExitOk;
  if (timeline.has_value()) {
    chart << RenderLoadChart(*options, *timeline);
    chart.close();
    if (chart.fail()) {  // the report still follows: the run happened
      err << "spillwayctl: load: --chart '" << options->chart_file << "': write failed\n";
      exit_code = kExitUsage;
    }
  }
  switch (options->output) {
    case LoadOutput::kTable:
      out << RenderLoadTable(*options, stats);
      break;
    case LoadOutput::kJson:
      out << RenderLoadJson(*options, stats);
      break;
    case LoadOutput::kCsv:
      out << RenderLoadCsv(*options, stats);
      break;
  }
  out.flush();
  return exit_code;
}

}  // namespace spillway::load
