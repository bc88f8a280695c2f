// `spillwayctl load`'s command line: good shapes parse to what they say, and every bad value
// is refused with a one-line reason naming the flag and the value, ending in the usage line.
#include "tools/load/load_args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/temp_files_test.h"

namespace spillway::load {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Base() {
  return {"--target",   "http://127.0.0.1:8080",
          "--api-key",  "s3cret-key",
          "--route",    "gpt-4o",
          "--rpm",      "600",
          "--duration", "30s"};
}

std::vector<std::string> With(std::vector<std::string> extra) {
  std::vector<std::string> args = Base();
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The message of a refused command line; fails the test when it was accepted.
std::string Refusal(const std::vector<std::string>& args) {
  absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(args);
  EXPECT_FALSE(parsed.ok());
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(parsed.status().message());
  EXPECT_THAT(message, EndsWith(std::string(" (usage: spillwayctl ") + kLoadUsage + ")"));
  EXPECT_THAT(message, Not(HasSubstr("\n")));
  EXPECT_THAT(message, Not(HasSubstr("s3cret-key")));
  return message;
}

TEST(LoadArgsTest, DefaultsAndRequiredFlags) {
  absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(Base());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->target, "http://127.0.0.1:8080");
  EXPECT_FALSE(parsed->address.tls);
  EXPECT_EQ(parsed->address.host, "127.0.0.1");
  EXPECT_EQ(parsed->address.port, "8080");
  ASSERT_EQ(parsed->api_keys.size(), 1u);
  EXPECT_EQ(parsed->api_keys[0].key, "s3cret-key");
  EXPECT_EQ(parsed->api_keys[0].label, "key-1");
  EXPECT_EQ(parsed->routes, std::vector<std::string>{"gpt-4o"});
  EXPECT_EQ(parsed->rate.kind, RateKind::kRpm);
  EXPECT_EQ(parsed->rate.from, 600);
  EXPECT_FALSE(parsed->rate.ramp());
  EXPECT_EQ(parsed->schedule.count(), 300) << "600 rpm for 30 s";
  EXPECT_TRUE(parsed->chart_file.empty());
  EXPECT_EQ(parsed->duration, std::chrono::seconds(30));
  EXPECT_EQ(parsed->concurrency, 64);
  EXPECT_EQ(parsed->stream_share, 0);
  EXPECT_EQ(parsed->output, LoadOutput::kTable);
  EXPECT_TRUE(parsed->tls_ca_file.empty());
  EXPECT_EQ(parsed->prompt_tokens.min, 100);
  EXPECT_TRUE(parsed->prompt_tokens.fixed());
  EXPECT_FALSE(parsed->http2);
}

TEST(LoadArgsTest, EveryFlagInBothSpellings) {
  absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(
      {"--target=https://example.openai.azure.com/", "--api_key=k", "--route=chat.v2", "--rpm=1",
       "--duration=2m", "--prompt-tokens", "200", "--completion_tokens=10-400", "--stream-share",
       "0.25", "--concurrency", "1000", "--timeout", "90s", "-o", "json"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->address.tls);
  EXPECT_EQ(parsed->address.port, "443");
  EXPECT_EQ(parsed->address.host_header, "example.openai.azure.com");
  EXPECT_EQ(parsed->routes, std::vector<std::string>{"chat.v2"});
  EXPECT_EQ(parsed->duration, std::chrono::minutes(2));
  EXPECT_EQ(parsed->prompt_tokens.min, 200);
  EXPECT_EQ(parsed->prompt_tokens.max, 200);
  EXPECT_EQ(parsed->completion_tokens.min, 10);
  EXPECT_EQ(parsed->completion_tokens.max, 400);
  EXPECT_FALSE(parsed->completion_tokens.fixed());
  EXPECT_EQ(parsed->stream_share, 0.25);
  EXPECT_EQ(parsed->concurrency, 1000);
  EXPECT_EQ(parsed->timeout, std::chrono::seconds(90));
  EXPECT_EQ(parsed->output, LoadOutput::kJson);
}

TEST(LoadArgsTest, Http2IsASwitch) {
  // Anywhere on the line; it takes no value, so the flag after it is still a flag.
  for (const std::vector<std::string>& args :
       {With({"--http2"}), With({"--http2", "-o", "json"}),
        std::vector<std::string>{"--http2", "--target", "https://example.openai.azure.com",
                                 "--api-key", "k", "--route", "r", "--rpm", "1", "--duration",
                                 "1m"}}) {
    absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(args);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(parsed->http2);
  }
  absl::StatusOr<LoadOptions> json = ParseLoadArgs(With({"--http2", "-o", "json"}));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->output, LoadOutput::kJson);
  EXPECT_THAT(Refusal(With({"--http2=yes"})), HasSubstr("--http2 takes no value (given 'yes')"));
  EXPECT_THAT(std::string(kLoadUsage), HasSubstr("[--http2]"));
}

TEST(LoadArgsTest, Durations) {
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::chrono::nanoseconds>>{
           {"30s", std::chrono::seconds(30)},
           {"2m", std::chrono::minutes(2)},
           {"1500ms", std::chrono::milliseconds(1500)},
           {"1h30m", std::chrono::minutes(90)},
           {"24h", std::chrono::hours(24)}}) {
    std::vector<std::string> args = Base();
    args[9] = text;
    absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(args);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    EXPECT_EQ(parsed->duration, expected) << text;
  }
  for (const std::string bad : {"30", "0s", "-5s", "soon", "25h", ""}) {
    std::vector<std::string> args = Base();
    args[9] = bad;
    EXPECT_THAT(Refusal(args), HasSubstr("--duration '" + bad + "'"));
  }
}

TEST(LoadArgsTest, TokenRanges) {
  absl::StatusOr<TokenRange> fixed = ParseTokenRange("200", 1000);
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->min, 200);
  EXPECT_EQ(fixed->max, 200);
  EXPECT_EQ(TokenRangeText(*fixed), "200");
  absl::StatusOr<TokenRange> range = ParseTokenRange("1-1000", 1000);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->min, 1);
  EXPECT_EQ(range->max, 1000);
  EXPECT_EQ(TokenRangeText(*range), "1-1000");
  for (const char* bad :
       {"0", "-5", "5-", "-", "a-b", "5-3", "1-1001", "1001", "+5", "1.5", "1-2-3", ""}) {
    EXPECT_FALSE(ParseTokenRange(bad, 1000).ok()) << bad;
  }
  EXPECT_THAT(Refusal(With({"--prompt-tokens", "5-3"})),
              HasSubstr("--prompt-tokens '5-3': MIN must not be above MAX"));
  EXPECT_THAT(Refusal(With({"--completion-tokens", "x"})),
              HasSubstr("--completion-tokens 'x': must be N or MIN-MAX"));
}

TEST(LoadArgsTest, StreamShareMustBeZeroToOne) {
  for (const char* good : {"0", "1", "0.5", "1.0"}) {
    EXPECT_TRUE(ParseLoadArgs(With({"--stream-share", good})).ok()) << good;
  }
  for (const std::string bad : {"1.5", "-0.1", "abc", "nan", "inf", ""}) {
    EXPECT_THAT(Refusal(With({"--stream-share", bad})),
                HasSubstr("--stream-share '" + bad + "': must be a number from 0 to 1"));
  }
}

TEST(LoadArgsTest, BadValuesNameTheFlagAndValue) {
  EXPECT_THAT(Refusal(With({"--rpm", "0"})), HasSubstr("--rpm '0': must be a whole number"));
  EXPECT_THAT(Refusal(With({"--rpm", "ten"})), HasSubstr("--rpm 'ten'"));
  EXPECT_THAT(Refusal(With({"--rpm", "6000001"})), HasSubstr("--rpm '6000001'"));
  EXPECT_THAT(Refusal(With({"--concurrency", "-1"})), HasSubstr("--concurrency '-1'"));
  EXPECT_THAT(Refusal(With({"--timeout", "never"})), HasSubstr("--timeout 'never'"));
  EXPECT_THAT(Refusal(With({"-o", "yaml"})),
              HasSubstr("--output 'yaml': must be table, json or csv"));
  EXPECT_THAT(Refusal(With({"--target", "ftp://host"})),
              HasSubstr("--target: endpoint 'ftp://host' must start with http:// or https://"));
  EXPECT_THAT(Refusal(With({"--target", "http://host/openai"})),
              HasSubstr("--target: endpoint 'http://host/openai'"));
  EXPECT_THAT(Refusal(With({"--target", "http://host:99999"})), HasSubstr("bad port"));
  EXPECT_THAT(Refusal(With({"--route", "a/b"})), HasSubstr("--route 'a/b'"));
  EXPECT_THAT(Refusal(With({"--tls-ca", "/nonexistent/ca.pem"})),
              HasSubstr("--tls-ca '/nonexistent/ca.pem': cannot read the file"));
}

TEST(LoadArgsTest, UnknownFlagsStrayArgumentsAndMissingValues) {
  EXPECT_THAT(Refusal(With({"--ramp", "10s"})), HasSubstr("unknown flag --ramp"));
  EXPECT_THAT(Refusal(With({"extra"})), HasSubstr("unexpected argument 'extra'"));
  EXPECT_THAT(Refusal(With({"--concurrency"})), HasSubstr("--concurrency needs a value"));
  // A global flag after the command is not one of load's.
  EXPECT_THAT(Refusal(With({"--server", "x"})), HasSubstr("unknown flag --server"));
}

TEST(LoadArgsTest, RequiredFlags) {
  const std::vector<std::string> base = Base();
  for (size_t drop = 0; drop < base.size(); drop += 2) {
    std::vector<std::string> args;
    for (size_t i = 0; i < base.size(); ++i) {
      if (i != drop && i != drop + 1) args.push_back(base[i]);
    }
    EXPECT_THAT(Refusal(args), HasSubstr(base[drop] + " is required"));
  }
}

TEST(LoadArgsTest, TheKeyIsNeverEchoed) {
  EXPECT_THAT(Refusal({"--api-key", ""}), HasSubstr("--api-key: must not be empty"));
  // Refusal() checks that the key given ("s3cret-key") is in no message.
  Refusal(With({"--duration", "x"}));
  Refusal(With({"--api-key", "s3cret-key", "--bogus"}));
}

TEST(LoadArgsTest, UsageLineIsTheIssuesInterface) {
  EXPECT_THAT(std::string(kLoadUsage),
              HasSubstr("load --target URL --api-key KEY --route NAME --rpm N --duration D "
                        "[--prompt-tokens N|MIN-MAX] [--completion-tokens N|MIN-MAX] "
                        "[--stream-share 0..1] [--concurrency N]"));
  EXPECT_THAT(std::string(kLoadUsage), HasSubstr("[-o table|json|csv]"));
}

// The base command line with its --rpm replaced by `rate` (e.g. {"--tpm", "12000"}).
std::vector<std::string> WithRate(std::vector<std::string> rate,
                                  std::vector<std::string> extra = {}) {
  std::vector<std::string> args = Base();
  args.erase(args.begin() + 6, args.begin() + 8);  // "--rpm", "600"
  args.insert(args.end(), rate.begin(), rate.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

using LoadArgsFileTest = test::TempFilesTest;

TEST(LoadArgsTest, RampsInRequestsOrTokens) {
  absl::StatusOr<LoadOptions> ramp = ParseLoadArgs(WithRate({"--rpm", "0-600"}));
  ASSERT_TRUE(ramp.ok()) << ramp.status();
  EXPECT_TRUE(ramp->rate.ramp());
  EXPECT_EQ(ramp->schedule.count(), 150) << "0 to 600 rpm over 30 s: 300 rpm for half a minute";
  EXPECT_THAT(Refusal(WithRate({"--rpm", "0-0"})), HasSubstr("--rpm '0-0': a ramp A-B must be"));
  EXPECT_THAT(Refusal(WithRate({"--rpm", "5-x"})), HasSubstr("--rpm '5-x'"));
  // 12000 tokens a minute at 100 + 100 tokens a request: 60 requests a minute.
  absl::StatusOr<LoadOptions> tpm = ParseLoadArgs(WithRate({"--tpm", "12000"}));
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  EXPECT_EQ(tpm->rate.kind, RateKind::kTpm);
  EXPECT_EQ(tpm->rate.tokens_per_request, 200);
  EXPECT_EQ(tpm->rate.from_milli, 60'000);
  EXPECT_EQ(tpm->schedule.count(), 30);
  // The sizes may come after --tpm: the mean is taken once all flags are read.
  tpm = ParseLoadArgs(
      WithRate({"--tpm", "0-12000"}, {"--prompt-tokens", "100-300", "--completion-tokens", "100"}));
  ASSERT_TRUE(tpm.ok()) << tpm.status();
  EXPECT_EQ(tpm->rate.tokens_per_request, 300);
  EXPECT_EQ(tpm->rate.to_milli, 40'000);
  EXPECT_EQ(tpm->schedule.count(), 10) << "0 to 40 rpm over 30 s";
  EXPECT_THAT(Refusal(WithRate({"--tpm", "1"}, {"--prompt-tokens", "1000000"})),
              HasSubstr("--tpm '1': 1 tpm is less than 0.001 requests a minute"));
}

TEST(LoadArgsTest, ExactlyOneRate) {
  EXPECT_THAT(Refusal(With({"--tpm", "100"})), HasSubstr("give one of --rpm, --tpm and --profile"));
  EXPECT_THAT(Refusal(With({"--profile", "/nonexistent"})),
              HasSubstr("give one of --rpm, --tpm and --profile"));
  EXPECT_THAT(Refusal(WithRate({})), HasSubstr("--rpm is required (or --tpm, or --profile)"));
  EXPECT_TRUE(ParseLoadArgs(With({"--rpm", "5"})).ok()) << "a repeated flag: the last wins";
}

TEST_F(LoadArgsFileTest, ProfileSetsTheDurationAndMayBeCutShort) {
  const std::string profile = Write("profile.csv", "minute,sent\n0,120\n1,60\n");
  std::vector<std::string> args = WithRate({"--profile", profile});
  args.erase(args.begin() + 6, args.begin() + 8);  // "--duration", "30s"
  absl::StatusOr<LoadOptions> whole = ParseLoadArgs(args);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->duration, std::chrono::minutes(2));
  EXPECT_EQ(whole->schedule.count(), 180);
  EXPECT_EQ(whole->rate.profile_rpm, (std::vector<int64_t>{120, 60}));
  absl::StatusOr<LoadOptions> cut = ParseLoadArgs(WithRate({"--profile", profile}));
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_EQ(cut->schedule.count(), 60) << "half of the first minute";
  EXPECT_THAT(Refusal(WithRate({"--profile", profile}, {"--duration", "3m"})),
              HasSubstr("--duration '3m': longer than the profile " + profile + " (2 minutes)"));
  const std::string bad = Write("bad.txt", "120\nfast\n");
  EXPECT_THAT(Refusal(WithRate({"--profile", bad})),
              HasSubstr("--profile '" + bad + "': " + bad + ":2: 'fast' must be a whole number"));
  const std::string quiet = Write("quiet.txt", "0\n60\n");
  EXPECT_THAT(Refusal(WithRate({"--profile", quiet})),
              HasSubstr("--profile '" + quiet + "': sends no request within --duration"));
}

TEST_F(LoadArgsFileTest, SizesFromFiles) {
  const std::string sizes = Write("sizes.csv", "prompt_tokens,completion_tokens\n100,1\n300,3\n");
  absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(WithRate(
      {"--tpm", "9000"}, {"--prompt-tokens", "@" + sizes, "--completion-tokens", "@" + sizes}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->prompt_tokens.mean(), 200);
  EXPECT_EQ(parsed->completion_tokens.mean(), 2);
  EXPECT_EQ(parsed->rate.from_milli, 44'554) << "9000 tpm at 202 tokens a request";
  const std::string bad = Write("bad.txt", "100\n0\n");
  EXPECT_THAT(Refusal(With({"--completion-tokens", "@" + bad})),
              HasSubstr("--completion-tokens '@" + bad + "': " + bad +
                        ":2: '0' must be a whole number from 1 to 1000000"));
  const std::string empty = Write("empty.txt", "# none\n");
  EXPECT_THAT(Refusal(With({"--prompt-tokens", "@" + empty})),
              HasSubstr(empty + ": holds no value"));
}

TEST(LoadArgsTest, SeveralKeysAndRoutes) {
  absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(
      With({"--api-key", "team-b=other=key", "--route", "gpt-4o-mini", "--api_key", "third"}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->api_keys.size(), 3u);
  EXPECT_EQ(parsed->api_keys[0].label, "key-1");
  EXPECT_EQ(parsed->api_keys[0].key, "s3cret-key");
  EXPECT_EQ(parsed->api_keys[1].label, "team-b");
  EXPECT_EQ(parsed->api_keys[1].key, "other=key") << "the first '=' ends the label";
  EXPECT_EQ(parsed->api_keys[2].label, "key-3") << "default labels count every key";
  EXPECT_EQ(parsed->api_keys[2].key, "third");
  EXPECT_EQ(parsed->routes, (std::vector<std::string>{"gpt-4o", "gpt-4o-mini"}));
  EXPECT_THAT(Refusal(With({"--route", "gpt-4o"})), HasSubstr("--route 'gpt-4o': is given twice"));
  EXPECT_THAT(Refusal(With({"--api-key", "key-1=other"})),
              HasSubstr("--api-key: the label 'key-1' is given twice"));
  EXPECT_THAT(Refusal(With({"--api-key", "team="})),
              HasSubstr("--api-key: the key labelled 'team' is empty"));
  std::vector<std::string> many = Base();
  for (int i = 0; i < 64; ++i) many.insert(many.end(), {"--route", "r" + std::to_string(i)});
  EXPECT_THAT(Refusal(many), HasSubstr("--route 'r63': is one more than 64 routes"));
}

TEST(LoadArgsTest, KeysAreNeverInErrorsOnlyTheirLabels) {
  // Refusal() checks that s3cret-key is in no message; these put it where a label would be.
  EXPECT_THAT(Refusal(With({"--api-key", "s3cret-key/x=y"})),
              HasSubstr("--api-key: the label before '=' must be"));
  EXPECT_THAT(Refusal(With({"--api-key", "lbl=s3cret-key\r\nX: 1"})),
              HasSubstr("--api-key: the key labelled 'lbl' holds a control character"));
  Refusal(With({"--api-key", "lbl=s3cret-key", "--rpm", "0"}));
}

TEST(LoadArgsTest, ChartIsAnSvgFile) {
  absl::StatusOr<LoadOptions> parsed = ParseLoadArgs(With({"--chart", "/tmp/run.SVG"}));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->chart_file, "/tmp/run.SVG");
  EXPECT_THAT(Refusal(With({"--chart", "run.png"})),
              HasSubstr("--chart 'run.png': must name an .svg file"));
}

}  // namespace
}  // namespace spillway::load
