// See args.h. Flag spellings follow the rest of Spillway: '-' or '_' in names, "--name value"
// or "--name=value", one or two leading dashes.
#include "controlplane/cli/args.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/drain_names.h"
#include "controlplane/cli/views.h"

namespace spillway::cli {

const char kUsage[] = R"(the Spillway operator CLI.

spillwayctl [GLOBAL FLAGS] COMMAND [ARGS] [-o FORMAT]

Commands:
  apply -f FILE [--dry-run]                 replace the whole topology with FILE ('-': stdin)
  create -f FILE [--dry-run]                add or replace the entries of a partial topology
  get [KIND [NAME]]                         the topology, the entries of one kind, or one entry
  delete KIND NAME [--dry-run]              remove one entry
  keys create TENANT KEY_NAME               mint a tenant key (printed once, on stdout)
  keys rotate TENANT KEY_NAME [NEW_NAME]    mint a key beside KEY_NAME (printed once)
  keys revoke TENANT KEY_NAME               remove a tenant key
  agents                                    agents, their region and acknowledged version
  health                                    backends the fleet reports unhealthy or throttled
  usage [--since T] [--until T] [--by DIMS] requests and tokens, for chargeback
  drain SCOPE NAME [--reason TEXT] [--keep-pinned] [--dry-run]
                                            take a region, instance or deployment out of
                                            service (no new requests; a drained region's
                                            agents answer /readyz 503)
  undrain SCOPE NAME [--dry-run]            put it back
  drill region NAME --duration D [--dry-run]
                                            drain a region for D (20s, 2m; at most 10m),
                                            restore it, print what the fleet did
  drills                                    past drills and their outcome
  capacity [--since T] [--until T] [--route NAME] [--target-percentile P] [--rates FILE]
                                            PTU sizing per route from metered usage: peak
                                            and percentile TPM, recommended PTUs, spill
                                            share and monthly cost (default: 7d, p95)
  load --target URL --api-key KEY --route NAME --rpm N --duration D [...]
                                            drive an endpoint with a traffic shape and
                                            report latency, throttling and backends
                                            (spillwayctl load --help)
  help [COMMAND]                            this text

KIND      stamp region subscription instance deployment pool route tenant drain (or plurals);
          a deployment is named INSTANCE/NAME, a route STAMP/NAME, a drain SCOPE/NAME
SCOPE     region, instance or deployment
FORMAT    table (default), json, yaml (get), csv (get KIND, agents, health, usage,
          capacity)
T         a duration ago (90m, 24h, 7d, 1d12h), a UTC date (2024-06-01) or RFC 3339;
          --since defaults to 24h, --until to now
DIMS      comma-separated tenant,route,deployment,instance,region,status (default tenant)
Exit      0 ok, 1 refused by the server, 2 bad usage or file, 3 server unreachable
Env       SPILLWAY_SERVER (instead of --server), SPILLWAY_TOKEN (when no --token-file))";

namespace {

constexpr absl::string_view kDimensions[] = {"tenant",   "route",  "deployment",
                                             "instance", "region", "status"};

struct GlobalFlag {
  absl::string_view name;
  bool takes_value;
};

constexpr GlobalFlag kGlobalFlags[] = {
    {"server", true},   {"token-file", true}, {"tls", false},       {"tls-ca", true},
    {"tls-cert", true}, {"tls-key", true},    {"timeout-ms", true}, {"output", true},
};

const GlobalFlag* FindGlobalFlag(absl::string_view name) {
  for (const GlobalFlag& flag : kGlobalFlags) {
    if (flag.name == name) {
      return &flag;
    }
  }
  return nullptr;
}

bool IsGlobalFlag(absl::string_view name) { return FindGlobalFlag(name) != nullptr; }

bool IsHelpFlag(absl::string_view arg) {
  return arg == "--help" || arg == "-help" || arg == "--helpfull" || arg == "-h" ||
         absl::StartsWith(arg, "--help=");
}

// "--dry_run=x" -> {"dry-run", "x", true}; one or two leading dashes.
struct FlagToken {
  std::string name;
  std::string value;
  bool has_value = false;
};

FlagToken SplitFlag(absl::string_view arg) {
  absl::ConsumePrefix(&arg, "-");
  absl::ConsumePrefix(&arg, "-");
  FlagToken token;
  const size_t equals = arg.find('=');
  token.name = absl::StrReplaceAll(arg.substr(0, equals), {{"_", "-"}});
  if (equals != absl::string_view::npos) {
    token.value = std::string(arg.substr(equals + 1));
    token.has_value = true;
  }
  return token;
}

bool LooksLikeFlag(absl::string_view arg) { return arg.size() > 1 && arg[0] == '-'; }

absl::StatusOr<bool> ParseBool(absl::string_view name, absl::string_view value) {
  if (value == "true") {
    return true;
  }
  if (value == "false") {
    return false;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, " takes true or false, not '", value, "'"));
}

absl::Status CheckGlobalValue(absl::string_view name, absl::string_view value) {
  if (name == "timeout-ms") {
    int64_t timeout_ms = 0;
    if (!absl::SimpleAtoi(value, &timeout_ms) || timeout_ms <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--timeout-ms takes a positive number of milliseconds, not '", value, "'"));
    }
  }
  if (name == "output") {
    return ParseOutputFormat(value).status();
  }
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
  }
  return absl::OkStatus();
}

// The arguments after the command: positionals, flags with values, switches.
struct VerbArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // by canonical name
  std::set<std::string> switches;
  bool help = false;
};

std::string Canonical(const std::string& name) {
  if (name == "f" || name == "file" || name == "filename") {
    return "file";
  }
  if (name == "o" || name == "output") {
    return "output";
  }
  return name;
}

absl::StatusOr<VerbArgs> TokenizeVerbArgs(const std::vector<std::string>& args,
                                          const std::set<std::string>& value_flags,
                                          const std::set<std::string>& switch_flags) {
  VerbArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.positional.insert(parsed.positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (!LooksLikeFlag(arg)) {
      parsed.positional.push_back(arg);
      continue;
    }
    if (IsHelpFlag(arg)) {
      parsed.help = true;
      continue;
    }
    FlagToken token = SplitFlag(arg);
    const std::string name = Canonical(token.name);
    if (value_flags.contains(name)) {
      if (!token.has_value) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
        }
        token.value = args[++i];
      }
      if (parsed.values.contains(name)) {
        return absl::InvalidArgumentError(absl::StrCat(arg, " given twice"));
      }
      parsed.values[name] = token.value;
    } else if (switch_flags.contains(name)) {
      bool on = true;
      if (token.has_value) {
        absl::StatusOr<bool> value = ParseBool(name, token.value);
        if (!value.ok()) {
          return value.status();
        }
        on = *value;
      }
      if (on) {
        parsed.switches.insert(name);
      }
    } else if (IsGlobalFlag(token.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(arg, " is a global flag: put it before the command"));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    }
  }
  return parsed;
}

absl::Status WithUsage(absl::string_view verb, const absl::Status& status) {
  const std::string usage = VerbUsage(verb);
  if (usage.empty()) {
    return status;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(status.message(), " (usage: spillwayctl ", usage, ")"));
}

absl::Status PositionalCount(const VerbArgs& args, size_t min, size_t max) {
  if (args.positional.size() < min) {
    return absl::InvalidArgumentError("missing arguments");
  }
  if (args.positional.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", args.positional[max], "'"));
  }
  return absl::OkStatus();
}

std::string ValueOr(const VerbArgs& args, const std::string& name, absl::string_view fallback) {
  const auto it = args.values.find(name);
  return it == args.values.end() ? std::string(fallback) : it->second;
}

// capacity: the window on whole minutes (the last, unfinished minute left out), so every
// minute counted is one the agents have reported whole.
absl::Status FillCapacity(const VerbArgs& args, absl::Time now, Command& command) {
  absl::StatusOr<absl::Time> since = ParseTimeArg(ValueOr(args, "since", "7d"), now);
  if (!since.ok()) {
    return since.status();
  }
  absl::StatusOr<absl::Time> until = ParseTimeArg(ValueOr(args, "until", "now"), now);
  if (!until.ok()) {
    return until.status();
  }
  const absl::Time minute_since =
      absl::Floor(*since - absl::UnixEpoch(), absl::Minutes(1)) + absl::UnixEpoch();
  const absl::Time minute_until =
      absl::Floor(*until - absl::UnixEpoch(), absl::Minutes(1)) + absl::UnixEpoch();
  if (minute_since >= minute_until) {
    return absl::InvalidArgumentError("--since must be at least a whole minute before --until");
  }
  if (minute_until - minute_since > absl::Hours(24 * 92)) {
    return absl::InvalidArgumentError("the window is at most 92 days of minutes");
  }
  double percentile = 95;
  const std::string target = ValueOr(args, "target-percentile", "95");
  if (!absl::SimpleAtod(target, &percentile) || !(percentile > 0 && percentile <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target-percentile '", target, "' must be a number in (0, 100]"));
  }
  command.capacity.since = minute_since;
  command.capacity.until = minute_until;
  command.capacity.target_percentile = percentile;
  command.capacity.route = ValueOr(args, "route", "");
  command.rates_file = ValueOr(args, "rates", "");
  return PositionalCount(args, 0, 0);
}

// Fills `command` from the tokenized arguments of `verb`.
absl::Status FillCommand(absl::string_view verb, const VerbArgs& args, absl::Time now,
                         Command& command) {
  if (const auto it = args.values.find("output"); it != args.values.end()) {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(it->second);
    if (!format.ok()) {
      return format.status();
    }
    command.output = *format;
  }
  command.dry_run = args.switches.contains("dry-run");
  if (verb == "apply" || verb == "create") {
    command.verb = verb == "apply" ? Verb::kApply : Verb::kCreate;
    const auto file = args.values.find("file");
    if (file == args.values.end() || file->second.empty()) {
      return absl::InvalidArgumentError("-f FILE is required");
    }
    command.file = file->second;
    return PositionalCount(args, 0, 0);
  }
  if (verb == "get" || verb == "delete") {
    command.verb = verb == "get" ? Verb::kGet : Verb::kDelete;
    absl::Status count = verb == "get" ? PositionalCount(args, 0, 2) : PositionalCount(args, 2, 2);
    if (!count.ok()) {
      return count;
    }
    if (!args.positional.empty()) {
      absl::StatusOr<v1::Kind> kind = ParseKind(args.positional[0]);
      if (!kind.ok()) {
        return kind.status();
      }
      command.kind = *kind;
    }
    if (args.positional.size() == 2) {
      command.name = args.positional[1];
    }
    return absl::OkStatus();
  }
  if (verb == "keys") {
    const std::string action = args.positional.empty() ? "" : args.positional[0];
    if (action == "create" || action == "revoke") {
      command.verb = action == "create" ? Verb::kKeysCreate : Verb::kKeysRevoke;
    } else if (action == "rotate") {
      command.verb = Verb::kKeysRotate;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown keys action '", action, "' (create, rotate or revoke)"));
    }
    absl::Status count = PositionalCount(args, 3, action == "rotate" ? 4 : 3);
    if (!count.ok()) {
      return count;
    }
    command.tenant = args.positional[1];
    command.key_name = args.positional[2];
    command.new_key_name = args.positional.size() == 4 ? args.positional[3] : "";
    return absl::OkStatus();
  }
  if (verb == "drain" || verb == "undrain") {
    command.verb = verb == "drain" ? Verb::kDrain : Verb::kUndrain;
    if (absl::Status count = PositionalCount(args, 2, 2); !count.ok()) {
      return count;
    }
    const std::optional<v1::DrainScope> scope = ParseDrainScope(args.positional[0]);
    if (!scope.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown scope '", args.positional[0],
                                                     "' (region, instance or deployment)"));
    }
    command.drain.set_scope(*scope);
    command.drain.set_name(args.positional[1]);
    if (const auto reason = args.values.find("reason"); reason != args.values.end()) {
      command.drain.set_reason(reason->second);
    }
    command.drain.set_keep_pinned(args.switches.contains("keep-pinned"));
    command.drain.set_dry_run(command.dry_run);
    return absl::OkStatus();
  }
  if (verb == "drill") {
    command.verb = Verb::kDrill;
    if (absl::Status count = PositionalCount(args, 2, 2); !count.ok()) {
      return count;
    }
    if (args.positional[0] != "region") {
      return absl::InvalidArgumentError(
          absl::StrCat("a drill takes a region out, not '", args.positional[0], "'"));
    }
    const auto duration = args.values.find("duration");
    absl::Duration parsed;
    if (duration == args.values.end() || !absl::ParseDuration(duration->second, &parsed) ||
        parsed < absl::Seconds(1) || parsed > absl::Minutes(10)) {
      return absl::InvalidArgumentError("--duration must be 1s..10m (e.g. 20s, 2m)");
    }
    command.drill.set_region(args.positional[1]);
    command.drill.set_duration_s(static_cast<uint32_t>(absl::ToInt64Seconds(parsed)));
    command.drill.set_dry_run(command.dry_run);
    return absl::OkStatus();
  }
  if (verb == "agents" || verb == "health" || verb == "drills") {
    if (verb == "drills") {
      command.verb = Verb::kDrills;
      return PositionalCount(args, 0, 0);
    }
    command.verb = verb == "agents" ? Verb::kAgents : Verb::kHealth;
    return PositionalCount(args, 0, 0);
  }
  if (verb == "usage") {
    command.verb = Verb::kUsage;
    const auto value_or = [&](const std::string& name, absl::string_view fallback) {
      const auto it = args.values.find(name);
      return it == args.values.end() ? std::string(fallback) : it->second;
    };
    absl::StatusOr<absl::Time> since = ParseTimeArg(value_or("since", "24h"), now);
    if (!since.ok()) {
      return since.status();
    }
    absl::StatusOr<absl::Time> until = ParseTimeArg(value_or("until", "now"), now);
    if (!until.ok()) {
      return until.status();
    }
    if (*since >= *until) {
      return absl::InvalidArgumentError("--since must be before --until");
    }
    absl::StatusOr<std::vector<std::string>> group_by = ParseGroupBy(value_or("by", "tenant"));
    if (!group_by.ok()) {
      return group_by.status();
    }
    command.usage.set_since_unix_ms(absl::ToUnixMillis(*since));
    // Without --until the server's own clock decides what "now" is.
    command.usage.set_until_unix_ms(args.values.contains("until") ? absl::ToUnixMillis(*until) : 0);
    for (const std::string& dimension : *group_by) {
      command.usage.add_group_by(dimension);
    }
    return PositionalCount(args, 0, 0);
  }
  if (verb == "capacity") {
    command.verb = Verb::kCapacity;
    return FillCapacity(args, now, command);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command '", verb, "' (see spillwayctl --help)"));
}

}  // namespace

absl::StatusOr<SplitArgs> SplitGlobalArgs(const std::vector<std::string>& args) {
  SplitArgs split;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (!LooksLikeFlag(arg)) {
      break;
    }
    if (IsHelpFlag(arg)) {
      split.global_flags.push_back(arg);
      continue;
    }
    FlagToken token = SplitFlag(arg);
    if (token.name == "o") {
      token.name = "output";
    }
    const GlobalFlag* flag = FindGlobalFlag(token.name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    }
    if (!flag->takes_value) {
      if (token.has_value) {
        absl::StatusOr<bool> value = ParseBool(token.name, token.value);
        if (!value.ok()) {
          return value.status();
        }
      }
      split.global_flags.push_back(
          absl::StrCat("--", token.name, token.has_value ? "=" : "", token.value));
      continue;
    }
    if (!token.has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      }
      token.value = args[++i];
    }
    absl::Status valid = CheckGlobalValue(token.name, token.value);
    if (!valid.ok()) {
      return valid;
    }
    split.global_flags.push_back(absl::StrCat("--", token.name, "=", token.value));
  }
  if (i < args.size()) {
    split.verb = args[i];
    split.verb_args.assign(args.begin() + i + 1, args.end());
  }
  return split;
}

absl::StatusOr<Command> ParseVerb(absl::string_view verb, const std::vector<std::string>& args,
                                  absl::Time now) {
  Command command;
  if (verb == "help") {
    command.help_for = args.empty() ? "" : args[0];
    return command;
  }
  std::set<std::string> value_flags = {"output"};
  std::set<std::string> switch_flags;
  if (verb == "apply" || verb == "create") {
    value_flags.insert("file");
    switch_flags.insert("dry-run");
  } else if (verb == "delete" || verb == "undrain") {
    switch_flags.insert("dry-run");
  } else if (verb == "drill") {
    value_flags.insert("duration");
    switch_flags.insert("dry-run");
  } else if (verb == "drain") {
    value_flags.insert("reason");
    switch_flags.insert({"dry-run", "keep-pinned"});
  } else if (verb == "usage") {
    value_flags.insert({"since", "until", "by"});
  } else if (verb == "capacity") {
    value_flags.insert({"since", "until", "route", "target-percentile", "rates"});
  }
  absl::StatusOr<VerbArgs> tokens = TokenizeVerbArgs(args, value_flags, switch_flags);
  if (!tokens.ok()) {
    return WithUsage(verb, tokens.status());
  }
  if (tokens->help) {
    command.help_for = std::string(verb);
    return command;
  }
  absl::Status filled = FillCommand(verb, *tokens, now, command);
  if (!filled.ok()) {
    return WithUsage(verb, filled);
  }
  return command;
}

std::string VerbUsage(absl::string_view verb) {
  static const auto* const kLines = new std::map<std::string, std::string, std::less<>>{
      {"apply", "apply -f FILE [--dry-run]"},
      {"create", "create -f FILE [--dry-run]"},
      {"get", "get [KIND [NAME]] [-o table|json|yaml|csv]"},
      {"delete", "delete KIND NAME [--dry-run]"},
      {"keys",
       "keys create TENANT KEY_NAME | keys rotate TENANT KEY_NAME [NEW_NAME] | "
       "keys revoke TENANT KEY_NAME"},
      {"agents", "agents [-o table|json|csv]"},
      {"health", "health [-o table|json|csv]"},
      {"usage", "usage [--since T] [--until T] [--by DIMS] [-o table|csv|json]"},
      {"drain",
       "drain region|instance|deployment NAME [--reason TEXT] [--keep-pinned] [--dry-run]"},
      {"undrain", "undrain region|instance|deployment NAME [--dry-run]"},
      {"drill", "drill region NAME --duration D [--dry-run] [-o table|json]"},
      {"drills", "drills [-o table|json|csv]"},
      {"capacity",
       "capacity [--since T] [--until T] [--route NAME] [--target-percentile P] [--rates FILE] "
       "[-o table|json|csv]"},
  };
  const auto it = kLines->find(verb);
  return it == kLines->end() ? "" : it->second;
}

absl::StatusOr<OutputFormat> ResolveOutputFormat(const Command& command,
                                                 std::optional<OutputFormat> global) {
  const OutputFormat format = command.output.value_or(global.value_or(OutputFormat::kTable));
  bool supported = format == OutputFormat::kTable || format == OutputFormat::kJson;
  switch (command.verb) {
    case Verb::kGet:
      // A CSV has one header row, so it holds one kind at a time.
      supported = supported || format == OutputFormat::kYaml ||
                  (format == OutputFormat::kCsv && command.kind != v1::KIND_UNSPECIFIED);
      break;
    case Verb::kAgents:
    case Verb::kHealth:
    case Verb::kUsage:
    case Verb::kDrills:
    case Verb::kCapacity:
      supported = supported || format == OutputFormat::kCsv;
      break;
    default:
      break;
  }
  if (!supported) {
    return absl::InvalidArgumentError(
        absl::StrCat("-o ", OutputFormatName(format), " is not available here",
                     command.verb == Verb::kGet ? " (csv needs a KIND)" : ""));
  }
  return format;
}

absl::StatusOr<absl::Time> ParseTimeArg(absl::string_view text, absl::Time now) {
  if (text == "now") {
    return now;
  }
  // A duration ago: absl's units (h, m, s, ...) plus days, which absl leaves out.
  absl::Duration ago = absl::ZeroDuration();
  bool is_duration = false;
  absl::string_view rest = text;
  if (const size_t d = rest.find('d'); d != absl::string_view::npos) {
    int64_t days = 0;
    if (absl::SimpleAtoi(rest.substr(0, d), &days) && days >= 0) {
      ago = absl::Hours(24 * days);
      rest = rest.substr(d + 1);
      is_duration = true;
    }
  }
  absl::Duration remainder;
  if (!rest.empty() && absl::ParseDuration(rest, &remainder)) {
    ago += remainder;
    is_duration = true;
  } else if (!rest.empty()) {
    is_duration = false;
  }
  if (is_duration) {
    if (ago <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a positive duration"));
    }
    return now - ago;
  }
  absl::Time time;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &time, &error) ||
      absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &time, &error)) {
    return time;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot read '", text,
                   "' as a time: use a duration ago (90m, 24h, 7d), a date "
                   "(2024-06-01) or RFC 3339 (2024-06-01T12:00:00Z)"));
}

absl::StatusOr<std::vector<std::string>> ParseGroupBy(absl::string_view text) {
  std::vector<std::string> dimensions;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const std::string dimension = absl::AsciiStrToLower(absl::StripAsciiWhitespace(part));
    if (std::find(std::begin(kDimensions), std::end(kDimensions), dimension) ==
        std::end(kDimensions)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown --by dimension '", dimension,
                                                     "' (known: ", absl::StrJoin(kDimensions, ","),
                                                     ")"));
    }
    if (std::find(dimensions.begin(), dimensions.end(), dimension) != dimensions.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--by names '", dimension, "' twice"));
    }
    dimensions.push_back(dimension);
  }
  return dimensions;
}

}  // namespace spillway::cli
