// See load_args.h.
#include "tools/load/load_args.h"

#include <fstream>
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
    "[--concurrency N] [--timeout D] [--tls-ca FILE] [-o table|json|csv]";

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

// Deployment names are letters, digits, '-', '_' and '.': nothing a path needs to escape.
bool IsRouteName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
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
constexpr absl::string_view kFlags[] = {"target",
                                        "api-key",
                                        "route",
                                        "rpm",
                                        "duration",
                                        "prompt-tokens",
                                        "completion-tokens",
                                        "stream-share",
                                        "concurrency",
                                        "timeout",
                                        "tls-ca",
                                        "output"};

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

// Where requests go and how the report is written: --target, --api-key, --route, --tls-ca,
// --output.
absl::Status ApplyWhere(const std::string& name, const std::string& value, LoadOptions& options) {
  if (name == "target") {
    absl::StatusOr<UpstreamAddress> address = ParseEndpoint(value);
    if (!address.ok()) {
      return Bad(absl::StrCat("--target: ", address.status().message()));
    }
    options.target = value;
    options.address = *std::move(address);
  } else if (name == "api-key") {
    if (value.empty()) {
      return Bad("--api-key: must not be empty");  // the value itself is never echoed
    }
    options.api_key = value;
  } else if (name == "route") {
    if (!IsRouteName(value)) {
      return BadValue(name, value, "must be a deployment name (letters, digits, '-', '_', '.')");
    }
    options.route = value;
  } else if (name == "tls-ca") {
    if (!std::ifstream(value).good()) {
      return BadValue(name, value, "cannot read the file");
    }
    options.tls_ca_file = value;
  } else if (value == "table" || value == "json" || value == "csv") {  // --output
    options.output = value == "table"  ? LoadOutput::kTable
                     : value == "json" ? LoadOutput::kJson
                                       : LoadOutput::kCsv;
  } else {
    return BadValue("output", value, "must be table, json or csv");
  }
  return absl::OkStatus();
}

// The traffic shape: --rpm, --duration, --timeout, --concurrency, the sizes, --stream-share.
// `options` keeps what earlier flags set (the last of a repeated flag wins).
absl::Status ApplyShape(const std::string& name, const std::string& value, LoadOptions& options) {
  if (name == "rpm" || name == "concurrency") {
    const bool rpm = name == "rpm";
    absl::StatusOr<int64_t> n = ParseCount(name, value, rpm ? kMaxRpm : kMaxConcurrency);
    if (!n.ok()) return n.status();
    (rpm ? options.rpm : options.concurrency) = *n;
  } else if (name == "duration" || name == "timeout") {
    absl::StatusOr<std::chrono::nanoseconds> d = ParsePositiveDuration(name, value);
    if (!d.ok()) return d.status();
    (name == "duration" ? options.duration : options.timeout) = *d;
  } else if (name == "prompt-tokens" || name == "completion-tokens") {
    const bool prompt = name == "prompt-tokens";
    absl::StatusOr<TokenRange> range =
        ParseTokenRange(value, prompt ? kMaxPromptTokens : kMaxCompletionTokens);
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
  return name == "rpm" || name == "concurrency" || name == "duration" || name == "timeout" ||
         name == "prompt-tokens" || name == "completion-tokens" || name == "stream-share";
}

}  // namespace

absl::StatusOr<TokenRange> ParseTokenRange(absl::string_view text, int64_t limit) {
  const std::string why = absl::StrCat("must be N or MIN-MAX, whole numbers from 1 to ", limit);
  TokenRange range;
  const size_t dash = text.find('-');
  const absl::string_view low = text.substr(0, dash);
  const absl::string_view high = dash == absl::string_view::npos ? low : text.substr(dash + 1);
  if (!absl::SimpleAtoi(low, &range.min) || !absl::SimpleAtoi(high, &range.max) || range.min < 1 ||
      range.max > limit || low.empty() || low[0] == '+' || high.empty() || high[0] == '+') {
    return absl::InvalidArgumentError(why);
  }
  if (range.min > range.max) {
    return absl::InvalidArgumentError("MIN must not be above MAX");
  }
  return range;
}

std::string TokenRangeText(const TokenRange& range) {
  return range.fixed() ? absl::StrCat(range.min) : absl::StrCat(range.min, "-", range.max);
}

absl::StatusOr<LoadOptions> ParseLoadArgs(const std::vector<std::string>& args) {
  LoadOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::StatusOr<FlagToken> token = SplitFlag(args[i]);
    if (!token.ok()) {
      return token.status();
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
  }
  const std::pair<const char*, bool> required[] = {{"--target", options.target.empty()},
                                                   {"--api-key", options.api_key.empty()},
                                                   {"--route", options.route.empty()},
                                                   {"--rpm", options.rpm == 0},
                                                   {"--duration", options.duration.count() == 0}};
  for (const auto& [flag, missing] : required) {
    if (missing) {
      return Bad(absl::StrCat(flag, " is required"));
    }
  }
  return options;
}

}  // namespace spillway::load
