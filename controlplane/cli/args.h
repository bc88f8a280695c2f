// spillwayctl's grammar: global flags before the command (then absl flags via ParseCommandLine),
// the command's own arguments parsed here, since absl flags has no subcommands.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/cli/capacity_report.h"
#include "controlplane/cli/output.h"
#include "spillway/v1/admin.pb.h"

namespace spillway::cli {

// Exit codes, stable for scripts.
inline constexpr int kExitOk = 0;
inline constexpr int kExitServerError = 1;  // the control plane refused the call
inline constexpr int kExitUsage = 2;        // bad command line or unreadable/invalid file
inline constexpr int kExitUnreachable = 3;  // UNAVAILABLE or DEADLINE_EXCEEDED

// The whole grammar, printed by --help and `spillwayctl help`.
extern const char kUsage[];

struct SplitArgs {
  // The global flags as "--name=value" (or "--tls", "--help"), ready for ParseCommandLine.
  std::vector<std::string> global_flags;
  std::string verb;  // empty when none was given
  std::vector<std::string> verb_args;
};

// Splits argv[1..] at the command. Global flags are checked here, values included, so that
// absl's own parser (which exits 1) never sees a bad one: unknown flags, missing values, a
// non-numeric --timeout-ms or an unknown -o format are InvalidArgument (exit 2).
absl::StatusOr<SplitArgs> SplitGlobalArgs(const std::vector<std::string>& args);

enum class Verb {
  kHelp,
  kApply,
  kCreate,
  kGet,
  kDelete,
  kKeysCreate,
  kKeysRotate,
  kKeysRevoke,
  kAgents,
  kHealth,
  kUsage,
  kDrain,
  kUndrain,
  kDrill,
  kDrills,
  kCapacity,
};

struct Command {
  Verb verb = Verb::kHelp;
  std::string help_for;                  // kHelp: the command whose usage to print, or empty
  std::optional<OutputFormat> output;    // -o given after the command
  std::string file;                      // apply, create: "-" is stdin
  bool dry_run = false;                  // apply, create, delete
  v1::Kind kind = v1::KIND_UNSPECIFIED;  // get, delete
  std::string name;                      // get, delete
  std::string tenant;                    // keys
  std::string key_name;                  // keys
  std::string new_key_name;              // keys rotate (optional)
  v1::UsageQuery usage;                  // usage, times already resolved
  v1::DrainRequest drain;                // drain, undrain: scope, name, reason, keep_pinned
  v1::DrillRequest drill;                // drill: region, duration, dry run
  CapacityOptions capacity;              // capacity: window on whole minutes, target, route
  std::string rates_file;                // capacity: empty for the built-in rates
};

// Parses the command and its arguments; `now` resolves relative --since/--until. Errors are
// InvalidArgument with a one-line reason that ends in the command's usage.
absl::StatusOr<Command> ParseVerb(absl::string_view verb, const std::vector<std::string>& args,
                                  absl::Time now);

// The usage line of one command ("apply -f FILE [--dry-run]"); empty for unknown commands.
std::string VerbUsage(absl::string_view verb);

// The format to print in: -o after the command wins over the global one; InvalidArgument when
// the command cannot print that way (e.g. yaml is only for `get`, csv only for tables).
absl::StatusOr<OutputFormat> ResolveOutputFormat(const Command& command,
                                                 std::optional<OutputFormat> global);

// A point in time for `usage`: a duration before `now` ("90m", "24h", "7d", "1d12h"), "now",
// a UTC date ("2024-06-01") or an RFC 3339 time ("2024-06-01T12:00:00Z").
absl::StatusOr<absl::Time> ParseTimeArg(absl::string_view text, absl::Time now);

// "tenant,route": the usage dimensions, each known and given once.
absl::StatusOr<std::vector<std::string>> ParseGroupBy(absl::string_view text);

}  // namespace spillway::cli
