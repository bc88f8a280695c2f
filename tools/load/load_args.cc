// See load_args.h.
#include "tools/load/load_args.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace spillway::load {

const char kLoadUsage[] =
    "load --target URL --api-key KEY --route NAME --rpm N --duration D "
    "[--prompt-tokens N|MIN-MAX] [--completion-tokens N|MIN-MAX] [--stream-share 0..1] "
    "[--concurrency N] [--timeout D] [--tls-ca FILE] [--http2] [-o table|json|csv] "
    "[--chart FILE.svg]; "
    "--rpm A-B ramps; --tpm N|A-B or --profile FILE instead of --rpm; sizes also @FILE; "
    "--api-key [LABEL=]KEY and --route repeat";

namespace {

absl::Status Bad(absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(message, " (usage: spillwayctl ", kLoadUsage, ")"));
}

// "--rpm 'abc': <why>": the flag and the value as given.
absl::Status BadValue(absl::string_view flag, absl::string_view value, absl::string_view why) {
  return Bad(absl::StrCat("--", flag, " '", value, "': ", why));
}

absl::StatusOr<int64_t> ParseCount(absl::string_view flag, absl::string_view value, int64_t limit) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < 1 || n > limit) {
    return BadValue(flag, value, absl::StrCat("must be a whole number from 1 to ", limit));
  }
  return n;
}

absl::StatusOr<std::chrono::nanoseconds> ParsePositiveDuration(absl::string_view flag,
                                                               absl::string_view value) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) {
    return BadValue(flag, value, "must be a positive duration with a unit, e.g. 30s, 2m, 1h");
  }
  if (d > absl::FromChrono(kMaxDuration)) {
    return BadValue(flag, value, "must be at most 24h");
  }
  return absl::ToChronoNanoseconds(d);
}

// Deployment names and key labels are letters, digits, '-', '_' and '.': nothing a path,
// a header or a report needs to escape.
bool IsName(absl::string_view name, size_t max_size) {
  if (name.empty() || name.size() > max_size) {
    return false;
  }
  for (const char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

// The flags, each spelled with '-' as docs/cli.md writes them.
constexpr absl::string_view kFlags[] = {"target",       "api-key",       "route",
                                        "rpm",          "tpm",           "profile",
                                        "duration",     "prompt-tokens", "completion-tokens",
                                        "stream-share", "concurrency",   "timeout",
                                        "tls-ca",       "output",        "chart",
                                        "http2"};

// "--name=value", "--name value", "-o value"; '_' and '-' both spell a name.
struct FlagToken {
  std::string name;
  std::optional<std::string> value;
};

absl::StatusOr<FlagToken> SplitFlag(absl::string_view arg) {
  FlagToken token;
  absl::string_view body;
  if (arg == "-o") {
    token.name = "output";
    return token;
  }
  if (!absl::ConsumePrefix(&arg, "--")) {
    return Bad(absl::StrCat("unexpected argument '", arg, "'"));
  }
  body = arg;
  const size_t eq = body.find('=');
  if (eq != absl::string_view::npos) {
    token.value = std::string(body.substr(eq + 1));
    body = body.substr(0, eq);
  }
  token.name = absl::StrReplaceAll(body, {{"_", "-"}});
  for (const absl::string_view known : kFlags) {
    if (token.name == known) {
      return token;
    }
  }
  return Bad(absl::StrCat("unknown flag --", body));
}

// --api-key [LABEL=]KEY, once per key. Errors name the label, never the key.
absl::Status AddKey(const std::string& value, LoadOptions& options) {
  if (options.api_keys.size() >= kMaxKeys) {
    return Bad(absl::StrCat("--api-key: at most ", kMaxKeys, " keys"));
  }
  LabelledKey key;
  const size_t eq = value.find('=');
  if (eq == std::string::npos) {
    key = {absl::StrCat("key-", options.api_keys.size() + 1), value};
  } else {
    key = {value.substr(0, eq), value.substr(eq + 1)};
    if (!IsName(key.label, 64)) {
      return Bad(
          "--api-key: the label before '=' must be 1 to 64 letters, digits, '-', '_' or '.' "
          "(a key that holds '=' needs a label: LABEL=KEY)");
    }
  }
  if (key.key.empty()) {
    return Bad(eq == std::string::npos
                   ? "--api-key: must not be empty"
                   : absl::StrCat("--api-key: the key labelled '", key.label, "' is empty"));
  }
  for (const char c : key.key) {
    if (absl::ascii_iscntrl(c)) {  // it goes in a header line
      return Bad(
          absl::StrCat("--api-key: the key labelled '", key.label, "' holds a control character"));
    }
  }
  for (const LabelledKey& other : options.api_keys) {
    if (other.label == key.label) {
      return Bad(absl::StrCat("--api-key: the label '", key.label, "' is given twice"));
    }
  }
  options.api_keys.push_back(std::move(key));
  return absl::OkStatus();
}

absl::Status AddRoute(const std::string& value, LoadOptions& options) {
  if (!IsName(value, 128)) {
    return BadValue("route", value, "must be a deployment name (letters, digits, '-', '_', '.')");
  }
  if (std::find(options.routes.begin(), options.routes.end(), value) != options.routes.end()) {
    return BadValue("route", value, "is given twice");
  }
  if (options.routes.size() >= kMaxRoutes) {
    return BadValue("route", value, absl::StrCat("is one more than ", kMaxRoutes, " routes"));
  }
  options.routes.push_back(value);
  return absl::OkStatus();
}

// Where requests go and what is written: --target, --api-key, --route, --tls-ca, --output,
// --chart.
absl::Status ApplyWhere(const std::string& name, const std::string& value, LoadOptions& options) {
  if (name == "target") {
    absl::StatusOr<UpstreamAddress> address = ParseEndpoint(value);
    if (!address.ok()) {
      return Bad(absl::StrCat("--target: ", address.status().message()));
    }
    options.target = value;
    options.address = *std::move(address);
  } else if (name == "api-key") {
    return AddKey(value, options);
  } else if (name == "route") {
    return AddRoute(value, options);
  } else if (name == "tls-ca") {
    if (!std::ifstream(value).good()) {
      return BadValue(name, value, "cannot read the file");
    }
    options.tls_ca_file = value;
  } else if (name == "chart") {
    if (value.size() <= 4 || !absl::EndsWithIgnoreCase(value, ".svg")) {
      return BadValue(name, value, "must name an .svg file (the chart is SVG)");
    }
    options.chart_file = value;
  } else if (value == "table" || value == "json" || value == "csv") {  // --output
    options.output = value == "table"  ? LoadOutput::kTable
                     : value == "json" ? LoadOutput::kJson
                                       : LoadOutput::kCsv;
  } else {
    return BadValue("output", value, "must be table, json or csv");
  }
  return absl::OkStatus();
}

// --rpm, --tpm, --profile: exactly one of them (a repeated one: the last wins).
absl::Status ApplyRate(const std::string& name, const std::string& value, LoadOptions& options) {
  const RateKind kind = name == "rpm"   ? RateKind::kRpm
                        : name == "tpm" ? RateKind::kTpm
                                        : RateKind::kProfile;
  if (options.rate.kind != RateKind::kNone && options.rate.kind != kind) {
    return Bad("give one of --rpm, --tpm and --profile");
  }
  const absl::Status parsed = kind == RateKind::kProfile ? ReadProfile(value, options.rate)
                                                         : ParseRate(kind, value, options.rate);
  return parsed.ok() ? parsed : BadValue(name, value, parsed.message());
}

// The traffic shape: the rate, --duration, --timeout, --concurrency, the sizes,
// --stream-share. `options` keeps what earlier flags set (the last of a repeated flag wins).
absl::Status ApplyShape(const std::string& name, const std::string& value, LoadOptions& options) {
  if (name == "rpm" || name == "tpm" || name == "profile") {
    return ApplyRate(name, value, options);
  } else if (name == "concurrency") {
    absl::StatusOr<int64_t> n = ParseCount(name, value, kMaxConcurrency);
    if (!n.ok()) return n.status();
    options.concurrency = *n;
  } else if (name == "duration" || name == "timeout") {
    absl::StatusOr<std::chrono::nanoseconds> d = ParsePositiveDuration(name, value);
    if (!d.ok()) return d.status();
    (name == "duration" ? options.duration : options.timeout) = *d;
  } else if (name == "prompt-tokens" || name == "completion-tokens") {
    const bool prompt = name == "prompt-tokens";
    absl::StatusOr<TokenRange> range =
        ParseTokenSizes(value, prompt ? kMaxPromptTokens : kMaxCompletionTokens,
                        prompt ? "prompt_tokens" : "completion_tokens");
    if (!range.ok()) return BadValue(name, value, range.status().message());
    (prompt ? options.prompt_tokens : options.completion_tokens) = *range;
  } else {  // --stream-share
    double share = 0;
    if (!absl::SimpleAtod(value, &share) || !(share >= 0 && share <= 1)) {  // NaN fails too
      return BadValue(name, value, "must be a number from 0 to 1");
    }
    options.stream_share = share;
  }
  return absl::OkStatus();
}

bool IsShapeFlag(absl::string_view name) {
  return name == "rpm" || name == "tpm" || name == "profile" || name == "concurrency" ||
         name == "duration" || name == "timeout" || name == "prompt-tokens" ||
         name == "completion-tokens" || name == "stream-share";
}

// Once every flag is known: a profile's length as the default duration, and the schedule.
absl::StatusOr<LoadOptions> FinishShape(const std::map<std::string, std::string>& given,
                                        LoadOptions& options) {
  if (options.rate.kind == RateKind::kProfile) {
    const auto length = std::chrono::minutes(options.rate.profile_rpm.size());
    if (options.duration.count() == 0) {
      options.duration = length;
    } else if (options.duration > length) {
      return BadValue("duration", given.at("duration"),
                      absl::StrCat("longer than the profile ", options.rate.profile_file, " (",
                                   options.rate.profile_rpm.size(), " minutes)"));
    }
  }
  const double tokens_per_request = options.prompt_tokens.mean() + options.completion_tokens.mean();
  absl::StatusOr<RateSchedule> schedule =
      FinishRate(options.rate, tokens_per_request, options.duration);
  if (!schedule.ok()) {
    const std::string flag = options.rate.kind == RateKind::kRpm   ? "rpm"
                             : options.rate.kind == RateKind::kTpm ? "tpm"
                                                                   : "profile";
    return BadValue(flag, given.at(flag), schedule.status().message());
  }
  options.schedule = *std::move(schedule);
  return std::move(options);
}

}  // namespace

absl::StatusOr<LoadOptions> ParseLoadArgs(const std::vector<std::string>& args) {
  LoadOptions options;
  // Each flag's last value, for the final checks (not the keys: they are never needed again).
  std::map<std::string, std::string> given;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::StatusOr<FlagToken> token = SplitFlag(args[i]);
    if (!token.ok()) {
      return token.status();
    }
    if (token->name == "http2") {  // a switch: the next argument is the next flag
      if (token->value.has_value()) {
        return Bad(absl::StrCat("--http2 takes no value (given '", *token->value, "')"));
      }
      options.http2 = true;
      continue;
    }
    if (!token->value.has_value()) {
      if (i + 1 >= args.size()) {
        return Bad(absl::StrCat(args[i], " needs a value"));
      }
      token->value = args[++i];
    }
    const absl::Status applied = IsShapeFlag(token->name)
                                     ? ApplyShape(token->name, *token->value, options)
                                     : ApplyWhere(token->name, *token->value, options);
    if (!applied.ok()) {
      return applied;
    }
    if (token->name != "api-key") given[token->name] = *token->value;
  }
  const bool profile = options.rate.kind == RateKind::kProfile;
  const std::pair<const char*, bool> required[] = {
      {"--target", options.target.empty()},
      {"--api-key", options.api_keys.empty()},
      {"--route", options.routes.empty()},
      {"--rpm", options.rate.kind == RateKind::kNone},
      {"--duration", !profile && options.duration.count() == 0}};
  for (const auto& [flag, missing] : required) {
    if (missing) {
      return Bad(absl::StrCat(flag, " is required",
                              flag == std::string("--rpm") ? " (or --tpm, or --profile)" : ""));
    }
  }
  return FinishShape(given, options);
}

}  // namespace spillway::load
