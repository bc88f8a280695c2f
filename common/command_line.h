// The command-line conventions every Spillway binary shares: flag names spelled with '-'
// (as docs/cli.md writes them) or '_', a --help that lists the binary's
// own flags, and a one-line reason on stderr with a non-zero exit for anything unusable.
#pragma once

#include "absl/strings/string_view.h"

namespace spillway {

struct CommandLineSpec {
  absl::string_view program;     // "spillway-agent"
  absl::string_view usage;       // printed above the flag list by --help
  absl::string_view flags_file;  // suffix of the source file defining the flags to list
};

// Parses argv into the absl flags (exits 0 after --help, non-zero on unknown flags or
// stray arguments). Also ignores SIGPIPE, raises the open-file limit to its maximum and turns
// off Abseil's mutex deadlock detection, which every long-running Spillway server wants.
void ParseCommandLine(int argc, char** argv, const CommandLineSpec& spec);

[[noreturn]] void DieWithReason(absl::string_view program, absl::string_view reason);

}  // namespace spillway
