// The real `spillwayctl load` against the real mock with the shapes beyond a constant rate: a
// ramp, tokens a minute, a replayed profile (plain, and a previous run's CSV), several keys and
// routes at once, sizes from files, and the chart. Counts are exact; nothing is timed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/support/http_client.h"
#include "tests/support/mock_aoai_process.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/load/load_test_util.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A second key the mock does not accept: its requests are answered 401.
constexpr char kOtherKey[] = "load-test-other-key-9d2e";

class LoadShapesTest : public LoadMockTest {
 protected:
  // Two deployments.
  void SetUp() override {
    LoadMockTest::SetUp();
    StartMock({}, "gpt-4o,gpt-4o-mini");
  }
  // The target, the keys (--api-key each), the route gpt-4o, then `args`.
  CtlResult Load(std::vector<std::string> args, std::vector<std::string> keys = {kLoadKey}) {
    std::vector<std::string> all = {"--target", "http://" + mock_->address()};
    for (const std::string& key : keys) all.insert(all.end(), {"--api-key", key});
    all.insert(all.end(), {"--route", "gpt-4o"});
    all.insert(all.end(), args.begin(), args.end());
    return RunLoad(*dir_, all);
  }
  // The mock's count of chat requests to `deployment` (0 when it saw none).
  int64_t MockRequests(const std::string& deployment) {
    HttpClient client("127.0.0.1", mock_->port());
    absl::StatusOr<HttpResponse> stats = client.Send("GET", "/mock/stats");
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (!stats.ok()) return -1;
    const boost::json::value json = boost::json::parse(stats->body);
    const boost::json::value* d = json.at("deployments").as_object().if_contains(deployment);
    return d == nullptr ? 0 : d->at("requests").as_int64();
  }
};

TEST_F(LoadShapesTest, ARampSendsItsIntegral) {
  // 0 to 1200 rpm over 4 s: 600 rpm on average, 40 requests.
  const CtlResult run =
      Load({"--rpm", "0-1200", "--duration", "4s", "--completion-tokens", "5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 40);
  EXPECT_EQ(Int(report, "ok"), 40);
  EXPECT_EQ(MockRequests("gpt-4o"), 40);
  const boost::json::value& shape = report.at("shape");
  EXPECT_EQ(shape.at("rate").as_string(), "ramp");
  EXPECT_EQ(Int(shape, "rpm_from"), 0);
  EXPECT_EQ(Int(shape, "rpm_to"), 1200);
  EXPECT_EQ(Int(shape, "requests"), 40);
  EXPECT_EQ(Int(report.at("minutes").as_array().at(0), "sent"), 40);
}

TEST_F(LoadShapesTest, TokensAMinuteSetTheRequestRate) {
  // 24000 tokens a minute at 100 + 100 tokens a request: 120 requests a minute, 4 in 2 s.
  const CtlResult run = Load({"--tpm", "24000", "--duration", "2s", "--prompt-tokens", "100",
                              "--completion-tokens", "100", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 4);
  EXPECT_EQ(Int(report.at("shape"), "tpm"), 24000);
  EXPECT_EQ(Int(report.at("shape"), "rpm"), 120);
  EXPECT_EQ(Int(report.at("shape"), "tokens_per_request"), 200);
}

TEST_F(LoadShapesTest, AProfileIsReplayedCutToTheDuration) {
  // Two minutes at 600 and 120 rpm, cut to 3 s of the first: 30 requests, all in minute 0.
  const std::string profile = Write("profile.txt", "# two minutes\n600\n120\n");
  const CtlResult run =
      Load({"--profile", profile, "--duration", "3s", "--completion-tokens", "5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 30);
  EXPECT_EQ(MockRequests("gpt-4o"), 30);
  const boost::json::array& minutes = report.at("minutes").as_array();
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(Int(minutes[0], "sent"), 30);
  EXPECT_EQ(report.at("shape").at("rate").as_string(), "profile");
  EXPECT_EQ(Int(report.at("shape"), "profile_minutes"), 2);
}

TEST_F(LoadShapesTest, APreviousRunsCsvIsReplayedByItsSentColumn) {
  // A first run sends 60 in its minute; its CSV replayed for 3 s sends 60 rpm's share: 3.
  const CtlResult first =
      Load({"--rpm", "1200", "--duration", "3s", "--completion-tokens", "1", "-o", "csv"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(CsvRecords(first.out).at(0).at("sent"), "60");
  const std::string profile = Write("previous.csv", first.out);
  const CtlResult replay =
      Load({"--profile", profile, "--duration", "3s", "--completion-tokens", "1", "-o", "csv"});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  const std::vector<std::map<std::string, std::string>> rows = CsvRecords(replay.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("sent"), "3");
  EXPECT_EQ(MockRequests("gpt-4o"), 63);
}

TEST_F(LoadShapesTest, SeveralKeysAndRoutesAreCountedApart) {
  // Requests go round team-a/gpt-4o, team-a/gpt-4o-mini, other/gpt-4o, other/gpt-4o-mini; the
  // mock refuses the other key (401).
  const std::vector<std::string> keys = {std::string("team-a=") + kLoadKey,
                                         std::string("other=") + kOtherKey};
  const CtlResult run = Load({"--route", "gpt-4o-mini", "--rpm", "1200", "--duration", "1s",
                              "--completion-tokens", "5", "-o", "json"},
                             keys);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, Not(HasSubstr(kLoadKey)));
  EXPECT_THAT(run.out, Not(HasSubstr(kOtherKey)));
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 20);
  EXPECT_EQ(Int(report.at("errors_by_kind"), "http_401"), 10);
  EXPECT_EQ(boost::json::serialize(report.at("by_tenant")),
            R"({"team-a":{"sent":10,"ok":10,"throttled":0,"errors":0},)"
            R"("other":{"sent":10,"ok":0,"throttled":0,"errors":10}})");
  EXPECT_EQ(boost::json::serialize(report.at("by_route")),
            R"({"gpt-4o":{"sent":10,"ok":5,"throttled":0,"errors":5},)"
            R"("gpt-4o-mini":{"sent":10,"ok":5,"throttled":0,"errors":5}})");
  EXPECT_EQ(MockRequests("gpt-4o-mini"), 10) << "half the requests, refused ones included";
  // The table names the labels, never the keys; key-2 is the default label of a second key.
  const CtlResult table = Load({"--rpm", "600", "--duration", "200ms", "--completion-tokens", "1"},
                               {kLoadKey, kOtherKey});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("TENANT   SENT"));
  EXPECT_THAT(table.out, HasSubstr("\nkey-2  "));
  EXPECT_THAT(table.out, Not(HasSubstr(kLoadKey)));
  EXPECT_THAT(table.out, Not(HasSubstr(kOtherKey)));
}

TEST_F(LoadShapesTest, SizesFromFilesAreDealtAndReportedBack) {
  // 40 requests: ten passes through the prompt sizes (mean 200), twenty through the
  // completion sizes (mean 10); the mock's usage says so.
  const std::string prompts = Write("prompts.txt", "50\n150\n250\n350\n");
  const std::string usage = Write("usage.csv", "prompt_tokens,completion_tokens\n1,5\n1,15\n");
  const CtlResult run =
      Load({"--rpm", "1200", "--duration", "2s", "--prompt-tokens", "@" + prompts,
            "--completion-tokens", "@" + usage, "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "ok"), 40);
  EXPECT_EQ(Num(report.at("prompt_tokens"), "mean"), 200);
  EXPECT_EQ(Num(report.at("completion_tokens"), "mean"), 10);
  EXPECT_EQ(report.at("shape").at("prompt_tokens").as_string(), "@" + prompts);
}

TEST_F(LoadShapesTest, TheChartIsWrittenAfterTheRun) {
  const std::string chart = dir_->path() + "/run.svg";
  const CtlResult run = Load({"--rpm", "600", "--duration", "2s", "--completion-tokens", "5",
                              "--stream-share", "0.5", "--chart", chart, "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, IsEmpty());
  EXPECT_EQ(Int(ParseReport(run.out), "sent"), 20);
  const std::string svg = ReadAll(chart);
  boost::property_tree::ptree tree;
  std::istringstream in(svg);
  ASSERT_NO_THROW(boost::property_tree::read_xml(in, tree)) << svg;
  EXPECT_EQ(tree.get_child("svg").count("g"), 2u) << "throughput and latency";
  EXPECT_THAT(svg, HasSubstr("class=\"series ok\""));
  EXPECT_THAT(svg, HasSubstr("class=\"series ttft-p50\""));
  EXPECT_THAT(svg, Not(HasSubstr(kLoadKey)));
}

TEST_F(LoadShapesTest, AnUnwritableChartExits2BeforeAnythingIsSent) {
  const CtlResult run =
      Load({"--rpm", "600", "--duration", "1s", "--chart", dir_->path() + "/no/such/dir/run.svg"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--chart '" + dir_->path() + "/no/such/dir/run.svg'"));
  EXPECT_THAT(run.out, IsEmpty());
  EXPECT_EQ(MockRequests("gpt-4o"), 0);
}

}  // namespace
}  // namespace spillway::test
