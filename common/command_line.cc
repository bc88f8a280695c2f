// See command_line.h.
#include "common/command_line.h"

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "common/log_event.h"

namespace spillway {
namespace {

bool IsHelp(absl::string_view arg) {
  return arg == "--help" || arg == "-help" || arg == "--helpfull" || arg == "-h" ||
         absl::StartsWith(arg, "--help=");
}

void PrintHelp(const CommandLineSpec& spec) {
  std::cout << spec.program << ": " << spec.usage << "\n\nFlags (names take '-' or '_'):\n";
  std::vector<absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), spec.flags_file)) {
      flags.push_back(flag);
    }
  }
  std::sort(flags.begin(), flags.end(), [](auto* a, auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : flags) {
    std::cout << "  --" << absl::StrReplaceAll(flag->Name(), {{"_", "-"}}) << " (default: '"
              << flag->DefaultValue() << "')\n      " << flag->Help() << "\n";
  }
  std::cout.flush();
}

// absl flag names cannot hold '-': rewrite the names (never the values) to '_'.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") {
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      continue;
    }
    const std::size_t start = arg[1] == '-' ? 2 : 1;
    const std::size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + static_cast<std::ptrdiff_t>(start),
                 arg.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  return args;
}

void RaiseFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

void ParseCommandLine(int argc, char** argv, const CommandLineSpec& spec) {
  absl::SetProgramUsageMessage(absl::StrCat(spec.program, ": ", spec.usage));
  for (int i = 1; i < argc; ++i) {
    if (IsHelp(argv[i])) {
      PrintHelp(spec);
      std::exit(0);
    }
  }
  std::vector<std::string> args = NormalizeFlagNames(argc, argv);
  std::vector<char*> pointers;
  for (std::string& arg : args) {
    pointers.push_back(arg.data());
  }
  const std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(pointers.size()), pointers.data());
  if (rest.size() > 1) {
    DieWithReason(spec.program, absl::StrCat("unexpected argument '", rest[1], "' (see --help)"));
  }
  std::signal(SIGPIPE, SIG_IGN);
  RaiseFileLimit();
  // Debian's Abseil is built with deadlock detection on: every Mutex::Lock then records the
  // lock in a process-wide graph under a global spinlock (~1k instructions per agent request,
  // callgrind, and one more lock every I/O thread shares). Tests keep it; servers do not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void DieWithReason(absl::string_view program, absl::string_view reason) {
  // In json mode (--log-format) the reason is a JSON line like every other the process wrote.
  const std::string line = FatalLine(program, reason);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::exit(2);
}

}  // namespace spillway
