// The real `spillwayctl load` against the real spillway-mock-aoai on a free port: the count the
// shape gives, tokens as asked, streams timed, 429s and their retry-after counted, the
// concurrency cap, TLS verification, exit codes. No assertion on how fast anything was.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/support/closed_port.h"
#include "tests/support/http_client.h"
#include "tests/support/mock_aoai_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_files.h"
#include "tests/tools/load/load_test_util.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

class LoadIntegrationTest : public LoadMockTest {
 protected:
  std::string MockUrl() const { return "http://" + mock_->address(); }
  CtlResult Load(const std::vector<std::string>& args) { return RunLoad(*dir_, args); }
  // The mock's own count of chat requests (from GET /mock/stats).
  int64_t MockRequests() {
    HttpClient client("127.0.0.1", mock_->port());
    absl::StatusOr<HttpResponse> stats = client.Send("GET", "/mock/stats");
    EXPECT_TRUE(stats.ok()) << stats.status();
    if (!stats.ok()) return -1;
    return boost::json::parse(stats->body).at("deployments").at("gpt-4o").at("requests").as_int64();
  }
};

TEST_F(LoadIntegrationTest, TheShapeIsSentAndMeasured) {
  StartMock();
  const CtlResult run = Load({"--target", MockUrl(), "--api-key", kLoadKey, "--route", "gpt-4o",
                              "--rpm", "600", "--duration", "6s", "--prompt-tokens", "200",
                              "--completion-tokens", "50", "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, IsEmpty()) << "no progress line when stderr is not a terminal";
  EXPECT_THAT(run.out, Not(HasSubstr(kLoadKey)));
  const boost::json::object report = ParseReport(run.out);
  // Open-loop and evenly spaced: 600 a minute for 6 s is 60, whatever the answers took.
  EXPECT_EQ(Int(report, "sent"), 60);
  EXPECT_EQ(Int(report, "ok"), 60);
  EXPECT_EQ(Int(report, "throttled"), 0);
  EXPECT_EQ(Int(report, "errors"), 0);
  EXPECT_EQ(Int(report, "streamed"), 30);
  EXPECT_EQ(MockRequests(), 60) << "nothing was retried or sent twice";
  // The mock counts the prompt as asked (tests/mock_aoai/token_estimate.cc) and answers
  // max_tokens; the report has what its usage said.
  EXPECT_EQ(Num(report.at("prompt_tokens"), "mean"), 200);
  EXPECT_EQ(Int(report.at("prompt_tokens"), "total"), 60 * 200);
  EXPECT_EQ(Num(report.at("completion_tokens"), "mean"), 50);
  EXPECT_EQ(Int(report.at("completion_tokens"), "requests"), 60);
  EXPECT_GT(Num(report, "tokens_per_second"), 0);
  // Only the 30 streams have a time to first token; each of their 50 token events but the
  // first has a gap before it.
  EXPECT_EQ(Int(report.at("ttft_ms"), "count"), 30);
  EXPECT_EQ(Int(report.at("itl_ms"), "count"), 30 * 49);
  EXPECT_EQ(Int(report.at("e2e_ms"), "count"), 60);
  for (const char* latency : {"ttft_ms", "itl_ms", "e2e_ms"}) {
    const boost::json::value& p = report.at(latency);
    EXPECT_LE(Num(p, "p50"), Num(p, "p90")) << latency;
    EXPECT_LE(Num(p, "p90"), Num(p, "p99")) << latency;
    EXPECT_LE(Num(p, "p99"), Num(p, "max")) << latency;
  }
  EXPECT_LE(Num(report.at("ttft_ms"), "p50"), Num(report.at("e2e_ms"), "max"));
  EXPECT_TRUE(report.at("by_backend").as_object().empty()) << "the mock names no backend";
  const boost::json::array& minutes = report.at("minutes").as_array();
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(Int(minutes[0], "sent"), 60);
  EXPECT_EQ(Int(minutes[0].at("ttft_ms"), "count"), 30);
}

TEST_F(LoadIntegrationTest, ThrottledAnswersAreCountedWithTheirRetryAfter) {
  // The next 7 requests get 429 with retry-after-ms 2500 (and retry-after 3), then all pass.
  StartMock({"--fault", "status=429,count=7,retry_after_ms=2500"});
  const CtlResult run = Load({"--target", MockUrl(), "--api-key", kLoadKey, "--route", "gpt-4o",
                              "--rpm", "600", "--duration", "2s", "--prompt-tokens", "20",
                              "--completion-tokens", "5", "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err << "429s are in the report, not the exit code";
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 20);
  EXPECT_EQ(Int(report, "throttled"), 7);
  EXPECT_EQ(Int(report, "ok"), 13);
  EXPECT_EQ(Int(report, "errors"), 0);
  EXPECT_EQ(MockRequests(), 20) << "a 429 is never retried";
  const boost::json::value& retry = report.at("retry_after");
  EXPECT_EQ(Int(retry, "count"), 7);
  EXPECT_EQ(Int(retry, "total_ms"), 7 * 2500);
  EXPECT_EQ(Int(retry, "max_ms"), 2500);
  EXPECT_EQ(Int(report.at("e2e_ms"), "count"), 13) << "a 429 has no end-to-end latency";
  EXPECT_EQ(Int(report.at("completion_tokens"), "total"), 13 * 5);
}

TEST_F(LoadIntegrationTest, OtherErrorsAreCountedByKind) {
  StartMock({"--fault", "status=503,count=3"});
  const CtlResult run =
      Load({"--target", MockUrl(), "--api-key", kLoadKey, "--route", "gpt-4o", "--rpm", "1200",
            "--duration", "500ms", "--completion-tokens", "5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 10);
  EXPECT_EQ(Int(report, "errors"), 3);
  EXPECT_EQ(Int(report.at("errors_by_kind"), "http_503"), 3);
  EXPECT_EQ(Int(report, "ok"), 7);
}

TEST_F(LoadIntegrationTest, InterimAnswersAreSkippedForTheRealOne) {
  StartMock({"--fault", "mode=interim,status=103,count=4"});
  const CtlResult run = Load({"--target", MockUrl(), "--api-key", kLoadKey, "--route", "gpt-4o",
                              "--rpm", "1200", "--duration", "500ms", "--completion-tokens", "5",
                              "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "ok"), 10) << run.out;
  EXPECT_EQ(Int(report.at("ttft_ms"), "count"), 5);
}

TEST_F(LoadIntegrationTest, ARequestPastItsTimeoutIsCutAndCounted) {
  // The first two requests are never answered. A 2 s --timeout: long enough that a loaded
  // machine does not cut the answered ones, short enough to keep the test brief.
  StartMock({"--fault", "mode=hang,count=2"});
  const CtlResult run =
      Load({"--target", MockUrl(), "--api-key", kLoadKey, "--route", "gpt-4o", "--rpm", "1200",
            "--duration", "500ms", "--completion-tokens", "5", "--timeout", "2s", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 10);
  EXPECT_EQ(Int(report, "ok"), 8);
  EXPECT_EQ(Int(report, "errors"), 2);
  EXPECT_EQ(Int(report.at("errors_by_kind"), "timeout"), 2);
}

TEST_F(LoadIntegrationTest, TheConcurrencyCapHoldsRequestsBackAndCountsThem) {
  // Each answer takes at least 200 ms (the mock's time to first token) and one may be in
  // flight, so every request after the first is due while the cap is full: delayed, then sent.
  StartMock({"--ttft-ms", "200"});
  const CtlResult run =
      Load({"--target", MockUrl(), "--api-key", kLoadKey, "--route", "gpt-4o", "--rpm", "1200",
            "--duration", "500ms", "--completion-tokens", "1", "--concurrency", "1", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 10);
  EXPECT_EQ(Int(report, "ok"), 10);
  EXPECT_EQ(Int(report, "delayed"), 9);
  EXPECT_GT(Num(report, "delayed_max_ms"), 0);
}

TEST_F(LoadIntegrationTest, CsvAndTableOutputs) {
  StartMock();
  const std::vector<std::string> shape = {"--target",
                                          MockUrl(),
                                          "--api-key",
                                          kLoadKey,
                                          "--route",
                                          "gpt-4o",
                                          "--rpm",
                                          "1200",
                                          "--duration",
                                          "500ms",
                                          "--completion-tokens",
                                          "5",
                                          "--stream-share",
                                          "1"};
  std::vector<std::string> csv_args = shape;
  csv_args.insert(csv_args.end(), {"-o", "csv"});
  const CtlResult csv = Load(csv_args);
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const std::vector<std::map<std::string, std::string>> rows = CsvRecords(csv.out);
  ASSERT_EQ(rows.size(), 1u) << csv.out;
  EXPECT_EQ(rows[0].at("minute"), "0");
  EXPECT_EQ(rows[0].at("sent"), "10");
  EXPECT_EQ(rows[0].at("ok"), "10");
  EXPECT_EQ(rows[0].at("completion_tokens"), "50");
  EXPECT_THAT(rows[0].at("ttft_p50_ms"), Not(IsEmpty()));

  const CtlResult table = Load(shape);
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, StartsWith("load " + MockUrl() + " route gpt-4o: 1200 rpm"));
  EXPECT_THAT(table.out, HasSubstr("SENT   OK   429   OTHER"));
  EXPECT_THAT(table.out, HasSubstr("MINUTE   SECONDS"));
  EXPECT_THAT(table.out, Not(HasSubstr(kLoadKey)));
}

TEST_F(LoadIntegrationTest, TlsIsVerifiedAgainstTheGivenCa) {
  absl::StatusOr<TlsFiles> tls = MakeSelfSignedCert(dir_->path());
  ASSERT_TRUE(tls.ok()) << tls.status();
  StartMock({"--tls-cert", tls->cert_file, "--tls-key", tls->key_file});
  const std::string target = "https://" + mock_->address();
  const CtlResult trusted =
      Load({"--target", target, "--api-key", kLoadKey, "--route", "gpt-4o", "--rpm", "1200",
            "--duration", "500ms", "--completion-tokens", "5", "--stream-share", "0.5", "--tls-ca",
            tls->cert_file, "-o", "json"});
  ASSERT_EQ(trusted.exit_code, 0) << trusted.err;
  EXPECT_EQ(Int(ParseReport(trusted.out), "ok"), 10);
  // The system's roots do not know the mock's self-signed certificate: not reachable safely.
  const CtlResult untrusted = Load({"--target", target, "--api-key", kLoadKey, "--route", "gpt-4o",
                                    "--rpm", "60", "--duration", "1s"});
  EXPECT_EQ(untrusted.exit_code, 3) << untrusted.out;
  EXPECT_THAT(untrusted.err, HasSubstr("TLS handshake with " + target));
  EXPECT_THAT(untrusted.out, IsEmpty());
}

TEST_F(LoadIntegrationTest, AnUnreachableTargetExits3WithoutTheKey) {
  ClosedPort closed;
  const CtlResult run = Load({"--target", closed.url(), "--api-key", kLoadKey, "--route", "gpt-4o",
                              "--rpm", "60", "--duration", "1s"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_THAT(run.err, StartsWith("spillwayctl: load: cannot connect to " + closed.url()));
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_THAT(run.err, Not(HasSubstr(kLoadKey)));
  EXPECT_THAT(run.out, IsEmpty());
}

TEST_F(LoadIntegrationTest, BadArgumentsExit2WithOneLineEndingInTheUsage) {
  const CtlResult run =
      Load({"--target", "http://127.0.0.1:1", "--api-key", kLoadKey, "--route", "gpt-4o", "--rpm",
            "60", "--duration", "1s", "--stream-share", "1.5"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, StartsWith("spillwayctl: --stream-share '1.5': must be a number"));
  EXPECT_THAT(run.err, HasSubstr("(usage: spillwayctl load --target URL"));
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_THAT(run.err, Not(HasSubstr(kLoadKey)));
  const CtlResult help = Load({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, StartsWith("usage: spillwayctl load --target URL"));
  // `spillwayctl help load` says the same as `spillwayctl load --help`.
  const CtlResult help_load =
      RunCtl(SPILLWAY_CTL_BIN, {"help", "load"}, dir_->path() + "/stderr-help-load");
  EXPECT_EQ(help_load.exit_code, 0);
  EXPECT_EQ(help_load.out, help.out);
}

}  // namespace
}  // namespace spillway::test
