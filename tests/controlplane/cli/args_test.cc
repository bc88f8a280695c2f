// spillwayctl's command line: the split at the command, every command's arguments, times,
// dimensions and output formats.
#include "controlplane/cli/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace spillway::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1'750'000'000);

absl::StatusOr<Command> Parse(absl::string_view verb, std::vector<std::string> args) {
  return ParseVerb(verb, args, kNow);
}

TEST(SplitGlobalArgsTest, NormalizesGlobalFlagsAndStopsAtTheCommand) {
  absl::StatusOr<SplitArgs> split =
      SplitGlobalArgs({"--server", "cp:7070", "--token_file=/t", "-o", "json", "--tls",
                       "--timeout-ms", "500", "get", "deployments", "-o", "yaml"});
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_THAT(split->global_flags, ElementsAre("--server=cp:7070", "--token-file=/t",
                                               "--output=json", "--tls", "--timeout-ms=500"));
  EXPECT_EQ(split->verb, "get");
  EXPECT_THAT(split->verb_args, ElementsAre("deployments", "-o", "yaml"));
}

TEST(SplitGlobalArgsTest, HelpPassesThroughAndNoCommandIsEmpty) {
  absl::StatusOr<SplitArgs> split = SplitGlobalArgs({"--help"});
  ASSERT_TRUE(split.ok());
  EXPECT_THAT(split->global_flags, ElementsAre("--help"));
  EXPECT_THAT(split->verb, IsEmpty());
}

TEST(SplitGlobalArgsTest, DoubleDashEndsTheGlobalFlags) {
  absl::StatusOr<SplitArgs> split = SplitGlobalArgs({"--", "agents"});
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->verb, "agents");
}

TEST(SplitGlobalArgsTest, RefusesWhatAbslWouldExitOneOn) {
  EXPECT_THAT(SplitGlobalArgs({"--bogus", "get"}).status().message(),
              HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(SplitGlobalArgs({"--server"}).status().message(), HasSubstr("needs a value"));
  EXPECT_THAT(SplitGlobalArgs({"--timeout-ms", "soon", "get"}).status().message(),
              HasSubstr("positive number of milliseconds"));
  EXPECT_THAT(SplitGlobalArgs({"--timeout-ms=0", "get"}).status().message(), HasSubstr("positive"));
  EXPECT_THAT(SplitGlobalArgs({"-o", "xml", "get"}).status().message(),
              HasSubstr("unknown output format 'xml'"));
  EXPECT_THAT(SplitGlobalArgs({"--tls=maybe", "get"}).status().message(),
              HasSubstr("true or false"));
  EXPECT_THAT(SplitGlobalArgs({"--server=", "get"}).status().message(), HasSubstr("needs a value"));
}

TEST(ParseVerbTest, ApplyNeedsAFileAndTakesDryRun) {
  absl::StatusOr<Command> apply = Parse("apply", {"-f", "t.yaml", "--dry-run"});
  ASSERT_TRUE(apply.ok()) << apply.status();
  EXPECT_EQ(apply->verb, Verb::kApply);
  EXPECT_EQ(apply->file, "t.yaml");
  EXPECT_TRUE(apply->dry_run);

  absl::StatusOr<Command> long_form = Parse("apply", {"--filename=t.yaml"});
  ASSERT_TRUE(long_form.ok());
  EXPECT_EQ(long_form->file, "t.yaml");
  EXPECT_FALSE(long_form->dry_run);

  absl::StatusOr<Command> missing = Parse("apply", {"--dry-run"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("-f FILE is required"));
  EXPECT_THAT(missing.status().message(), HasSubstr("(usage: spillwayctl apply -f FILE"));

  EXPECT_THAT(Parse("apply", {"-f"}).status().message(), HasSubstr("-f needs a value"));
  EXPECT_THAT(Parse("apply", {"-f", "a", "-f", "b"}).status().message(), HasSubstr("given twice"));
  EXPECT_THAT(Parse("apply", {"-f", "a", "extra"}).status().message(),
              HasSubstr("unexpected argument 'extra'"));
  EXPECT_THAT(Parse("apply", {"-f", "a", "--dry-run=perhaps"}).status().message(),
              HasSubstr("true or false"));
  EXPECT_FALSE(Parse("apply", {"-f", "a", "--dry-run=false"})->dry_run);
}

TEST(ParseVerbTest, CreateIsApplysTwin) {
  absl::StatusOr<Command> create = Parse("create", {"-f=-"});
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->verb, Verb::kCreate);
  EXPECT_EQ(create->file, "-");
}

TEST(ParseVerbTest, GetTakesAnOptionalKindAndName) {
  absl::StatusOr<Command> all = Parse("get", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->verb, Verb::kGet);
  EXPECT_EQ(all->kind, v1::KIND_UNSPECIFIED);

  absl::StatusOr<Command> one = Parse("get", {"Routes", "us/gpt-4o", "-o", "yaml"});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->kind, v1::KIND_ROUTE);
  EXPECT_EQ(one->name, "us/gpt-4o");
  EXPECT_EQ(one->output, OutputFormat::kYaml);

  EXPECT_THAT(Parse("get", {"gizmo"}).status().message(), HasSubstr("unknown kind 'gizmo'"));
  EXPECT_THAT(Parse("get", {"tenant", "a", "b"}).status().message(),
              HasSubstr("unexpected argument 'b'"));
  EXPECT_THAT(Parse("get", {"--timeout-ms", "5"}).status().message(),
              HasSubstr("--timeout-ms is a global flag: put it before the command"));
  EXPECT_THAT(Parse("get", {"--dry-run"}).status().message(), HasSubstr("unknown flag"));
}

TEST(ParseVerbTest, DeleteNeedsKindAndName) {
  absl::StatusOr<Command> command = Parse("delete", {"deployment", "i/d", "--dry-run"});
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(command->verb, Verb::kDelete);
  EXPECT_EQ(command->kind, v1::KIND_DEPLOYMENT);
  EXPECT_EQ(command->name, "i/d");
  EXPECT_TRUE(command->dry_run);
  EXPECT_THAT(Parse("delete", {"tenant"}).status().message(), HasSubstr("missing arguments"));
}

TEST(ParseVerbTest, Keys) {
  absl::StatusOr<Command> create = Parse("keys", {"create", "t", "k"});
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->verb, Verb::kKeysCreate);
  EXPECT_EQ(create->tenant, "t");
  EXPECT_EQ(create->key_name, "k");

  absl::StatusOr<Command> rotate = Parse("keys", {"rotate", "t", "k"});
  ASSERT_TRUE(rotate.ok());
  EXPECT_EQ(rotate->verb, Verb::kKeysRotate);
  EXPECT_THAT(rotate->new_key_name, IsEmpty());
  EXPECT_EQ(Parse("keys", {"rotate", "t", "k", "k2"})->new_key_name, "k2");

  EXPECT_EQ(Parse("keys", {"revoke", "t", "k"})->verb, Verb::kKeysRevoke);
  EXPECT_THAT(Parse("keys", {"revoke", "t", "k", "k2"}).status().message(),
              HasSubstr("unexpected argument 'k2'"));
  EXPECT_THAT(Parse("keys", {"list", "t"}).status().message(),
              HasSubstr("unknown keys action 'list'"));
  EXPECT_THAT(Parse("keys", {"create", "t"}).status().message(), HasSubstr("missing arguments"));
}

TEST(ParseVerbTest, AgentsAndHealthTakeNoArguments) {
  EXPECT_EQ(Parse("agents", {})->verb, Verb::kAgents);
  EXPECT_EQ(Parse("health", {"-o", "csv"})->output, OutputFormat::kCsv);
  EXPECT_THAT(Parse("agents", {"eastus2"}).status().message(), HasSubstr("unexpected argument"));
}

TEST(ParseVerbTest, UsageResolvesTimesAndDimensions) {
  absl::StatusOr<Command> usage =
      Parse("usage", {"--since", "7d", "--until", "1h", "--by", "tenant, Route"});
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(usage->verb, Verb::kUsage);
  EXPECT_EQ(usage->usage.since_unix_ms(), absl::ToUnixMillis(kNow - absl::Hours(7 * 24)));
  EXPECT_EQ(usage->usage.until_unix_ms(), absl::ToUnixMillis(kNow - absl::Hours(1)));
  EXPECT_THAT(usage->usage.group_by(), ElementsAre("tenant", "route"));

  // Defaults: the last 24 hours by tenant, "until" left to the server's clock.
  absl::StatusOr<Command> defaults = Parse("usage", {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->usage.since_unix_ms(), absl::ToUnixMillis(kNow - absl::Hours(24)));
  EXPECT_EQ(defaults->usage.until_unix_ms(), 0);
  EXPECT_THAT(defaults->usage.group_by(), ElementsAre("tenant"));

  EXPECT_THAT(Parse("usage", {"--since", "1h", "--until", "2h"}).status().message(),
              HasSubstr("--since must be before --until"));
  EXPECT_THAT(Parse("usage", {"--by", "colour"}).status().message(),
              HasSubstr("unknown --by dimension 'colour'"));
}

TEST(ParseVerbTest, HelpAndUnknownCommands) {
  absl::StatusOr<Command> help = Parse("usage", {"--since", "--help"});
  EXPECT_FALSE(help.ok());  // --since took "--help" as its value
  absl::StatusOr<Command> verb_help = Parse("usage", {"-h"});
  ASSERT_TRUE(verb_help.ok());
  EXPECT_EQ(verb_help->verb, Verb::kHelp);
  EXPECT_EQ(verb_help->help_for, "usage");
  EXPECT_EQ(Parse("help", {"apply"})->help_for, "apply");
  EXPECT_THAT(Parse("frobnicate", {}).status().message(),
              HasSubstr("unknown command 'frobnicate'"));
}

TEST(ParseTimeArgTest, DurationsDatesAndRfc3339) {
  EXPECT_EQ(*ParseTimeArg("90m", kNow), kNow - absl::Minutes(90));
  EXPECT_EQ(*ParseTimeArg("24h", kNow), kNow - absl::Hours(24));
  EXPECT_EQ(*ParseTimeArg("7d", kNow), kNow - absl::Hours(168));
  EXPECT_EQ(*ParseTimeArg("1d12h", kNow), kNow - absl::Hours(36));
  EXPECT_EQ(*ParseTimeArg("now", kNow), kNow);
  EXPECT_EQ(*ParseTimeArg("2024-06-01", kNow), absl::FromUnixSeconds(1717200000));
  EXPECT_EQ(*ParseTimeArg("2024-06-01T12:00:00Z", kNow), absl::FromUnixSeconds(1717243200));
  EXPECT_EQ(*ParseTimeArg("2024-06-01T14:00:00+02:00", kNow), absl::FromUnixSeconds(1717243200));
  EXPECT_FALSE(ParseTimeArg("0s", kNow).ok());
  EXPECT_FALSE(ParseTimeArg("-5m", kNow).ok());
  EXPECT_FALSE(ParseTimeArg("yesterday", kNow).ok());
  EXPECT_FALSE(ParseTimeArg("3dx", kNow).ok());
}

TEST(ParseGroupByTest, KnownDimensionsOnce) {
  EXPECT_THAT(*ParseGroupBy("tenant,route,deployment,instance,region,status"),
              ElementsAre("tenant", "route", "deployment", "instance", "region", "status"));
  EXPECT_THAT(ParseGroupBy("tenant,tenant").status().message(), HasSubstr("twice"));
  EXPECT_FALSE(ParseGroupBy("").ok());
}

TEST(ResolveOutputFormatTest, AfterTheCommandWinsAndEachCommandHasItsFormats) {
  Command get = *Parse("get", {"deployments"});
  EXPECT_EQ(*ResolveOutputFormat(get, std::nullopt), OutputFormat::kTable);
  EXPECT_EQ(*ResolveOutputFormat(get, OutputFormat::kJson), OutputFormat::kJson);
  get.output = OutputFormat::kCsv;
  EXPECT_EQ(*ResolveOutputFormat(get, OutputFormat::kJson), OutputFormat::kCsv);

  Command get_all = *Parse("get", {});
  EXPECT_EQ(*ResolveOutputFormat(get_all, OutputFormat::kYaml), OutputFormat::kYaml);
  EXPECT_THAT(ResolveOutputFormat(get_all, OutputFormat::kCsv).status().message(),
              HasSubstr("csv needs a KIND"));

  const Command apply = *Parse("apply", {"-f", "x"});
  EXPECT_EQ(*ResolveOutputFormat(apply, OutputFormat::kJson), OutputFormat::kJson);
  EXPECT_FALSE(ResolveOutputFormat(apply, OutputFormat::kYaml).ok());
  EXPECT_FALSE(ResolveOutputFormat(apply, OutputFormat::kCsv).ok());

  const Command usage = *Parse("usage", {});
  EXPECT_EQ(*ResolveOutputFormat(usage, OutputFormat::kCsv), OutputFormat::kCsv);
  EXPECT_FALSE(ResolveOutputFormat(usage, OutputFormat::kYaml).ok());
}

TEST(VerbUsageTest, EveryCommandHasAUsageLine) {
  for (absl::string_view verb :
       {"apply", "create", "get", "delete", "keys", "agents", "health", "usage"}) {
    EXPECT_THAT(VerbUsage(verb), HasSubstr(verb));
    EXPECT_THAT(std::string(kUsage), HasSubstr(absl::StrCat("  ", verb, " ")));
  }
  EXPECT_THAT(VerbUsage("frobnicate"), IsEmpty());
}

}  // namespace
TEST(ParseVerbTest, DrainUndrainAndDrill) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  absl::StatusOr<Command> drain = ParseVerb(
      "drain", {"deployment", "a/gpt-4o", "--reason", "model upgrade", "--keep-pinned"}, now);
  ASSERT_TRUE(drain.ok()) << drain.status();
  EXPECT_EQ(drain->verb, Verb::kDrain);
  EXPECT_EQ(drain->drain.scope(), v1::DRAIN_SCOPE_DEPLOYMENT);
  EXPECT_EQ(drain->drain.name(), "a/gpt-4o");
  EXPECT_EQ(drain->drain.reason(), "model upgrade");
  EXPECT_TRUE(drain->drain.keep_pinned());
  absl::StatusOr<Command> undrain = ParseVerb("undrain", {"region", "eastus2", "--dry-run"}, now);
  ASSERT_TRUE(undrain.ok()) << undrain.status();
  EXPECT_EQ(undrain->verb, Verb::kUndrain);
  EXPECT_TRUE(undrain->dry_run);
  EXPECT_THAT(ParseVerb("drain", {"galaxy", "x"}, now).status().message(),
              HasSubstr("unknown scope 'galaxy'"));
  EXPECT_THAT(ParseVerb("undrain", {"region", "x", "--reason", "r"}, now).status().message(),
              HasSubstr("unknown flag"));

  absl::StatusOr<Command> drill =
      ParseVerb("drill", {"region", "eastus2", "--duration", "2m", "--dry-run"}, now);
  ASSERT_TRUE(drill.ok()) << drill.status();
  EXPECT_EQ(drill->verb, Verb::kDrill);
  EXPECT_EQ(drill->drill.region(), "eastus2");
  EXPECT_EQ(drill->drill.duration_s(), 120u);
  EXPECT_TRUE(drill->drill.dry_run());
  EXPECT_THAT(ParseVerb("drill", {"region", "eastus2"}, now).status().message(),
              HasSubstr("--duration must be 1s..10m"));
  EXPECT_THAT(
      ParseVerb("drill", {"region", "eastus2", "--duration", "11m"}, now).status().message(),
      HasSubstr("--duration must be 1s..10m"));
  EXPECT_THAT(ParseVerb("drill", {"instance", "a", "--duration", "1m"}, now).status().message(),
              HasSubstr("a drill takes a region out"));
  absl::StatusOr<Command> drills = ParseVerb("drills", {}, now);
  ASSERT_TRUE(drills.ok());
  EXPECT_EQ(drills->verb, Verb::kDrills);
}

}  // namespace spillway::cli
