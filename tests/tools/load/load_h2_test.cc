// The real `spillwayctl load --http2` against the real spillway-mock-aoai (h2c and ALPN h2, its
// connections counted by protocol): HTTP/1.1's counts, multiplexing, faults, TLS. No timings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/mock_aoai_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_files.h"
#include "tests/tools/load/load_test_util.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class LoadH2Test : public LoadMockTest {
 protected:
  void StartTlsMock(std::vector<std::string> extra = {}) {
    absl::StatusOr<TlsFiles> tls = MakeSelfSignedCert(dir_->path());
    ASSERT_TRUE(tls.ok()) << tls.status();
    ca_file_ = tls->cert_file;
    extra.insert(extra.end(), {"--tls-cert", tls->cert_file, "--tls-key", tls->key_file});
    StartMock(extra);
  }
  std::string Url() const { return (ca_file_.empty() ? "http://" : "https://") + mock_->address(); }
  // `spillwayctl load --http2` at the mock, for gpt-4o, with `args`.
  CtlResult LoadH2(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"--target", Url(), "--api-key", kLoadKey, "--route", "gpt-4o", "--http2"});
    if (!ca_file_.empty()) args.insert(args.end(), {"--tls-ca", ca_file_});
    return RunLoad(*dir_, args);
  }
  // GET /mock/stats, over HTTP/1.1: this client's connection counts as one "http1".
  boost::json::value MockStats() {
    HttpClient client("127.0.0.1", mock_->port(), !ca_file_.empty(), ca_file_);
    absl::StatusOr<HttpResponse> stats = client.Send("GET", "/mock/stats");
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? boost::json::parse(stats->body) : boost::json::value();
  }
  static int64_t Connections(const boost::json::value& stats, const char* protocol) {
    return stats.at("connections").at(protocol).as_int64();
  }
  static const boost::json::value& Gpt4o(const boost::json::value& stats) {
    return stats.at("deployments").at("gpt-4o");
  }

  std::string ca_file_;  // set by StartTlsMock
};

std::string Protocol(const boost::json::object& report) {
  return std::string(report.at("shape").at("protocol").as_string());
}

TEST_F(LoadH2Test, TheShapeIsSentAndMeasuredOverOneH2Connection) {
  StartMock();
  const CtlResult run =
      LoadH2({"--rpm", "600", "--duration", "6s", "--prompt-tokens", "200", "--completion-tokens",
              "50", "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.err, IsEmpty());
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Protocol(report), "h2");
  // Exactly what the same shape gives over HTTP/1.1 (load_integration_test.cc).
  EXPECT_EQ(Int(report, "sent"), 60);
  EXPECT_EQ(Int(report, "ok"), 60);
  EXPECT_EQ(Int(report, "errors"), 0);
  EXPECT_EQ(Int(report, "streamed"), 30);
  EXPECT_EQ(Num(report.at("prompt_tokens"), "mean"), 200);
  EXPECT_EQ(Num(report.at("completion_tokens"), "mean"), 50);
  EXPECT_EQ(Int(report.at("completion_tokens"), "requests"), 60);
  // Timed from DATA frames as they came: each stream's 50 token events, 49 gaps.
  EXPECT_EQ(Int(report.at("ttft_ms"), "count"), 30);
  EXPECT_EQ(Int(report.at("itl_ms"), "count"), 30 * 49);
  EXPECT_EQ(Int(report.at("e2e_ms"), "count"), 60);
  const boost::json::value stats = MockStats();
  EXPECT_EQ(Int(Gpt4o(stats), "requests"), 60) << "nothing was retried or sent twice";
  // The mock served them all as HTTP/2 streams of one connection (the probe's connection closed
  // before its first byte, which the mock counts as neither).
  EXPECT_EQ(Connections(stats, "h2"), 1);
  EXPECT_EQ(Connections(stats, "http1"), 1) << "only the stats request";
}

TEST_F(LoadH2Test, StreamsShareConnectionsUpToTheBackendsLimit) {
  // Two streams a connection, each answer held 1.5 s: the 6 requests (one each 50 ms) are all
  // open at once, so they need exactly 3 connections.
  StartMock({"--h2-max-concurrent-streams", "2", "--ttft-ms", "1500"});
  const CtlResult run =
      LoadH2({"--rpm", "1200", "--duration", "300ms", "--completion-tokens", "1"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, StartsWith("load " + Url() + " route gpt-4o: 1200 rpm"));
  EXPECT_THAT(run.out.substr(0, run.out.find('\n')), HasSubstr(", concurrency 64, over h2"));
  const boost::json::value stats = MockStats();
  EXPECT_EQ(Int(Gpt4o(stats).at("by_status"), "200"), 6);
  EXPECT_EQ(Connections(stats, "h2"), 3);
}

TEST_F(LoadH2Test, ALongStreamKeepsItsFlowControlWindowOpen) {
  // 1,000 events, about 180 KB: past the 64 KB stream window the agent's session opens, which
  // grows again only as the load generator says it took the bytes (H2Stream::Consumed).
  StartMock();
  const CtlResult run = LoadH2({"--rpm", "120", "--duration", "1s", "--completion-tokens", "1000",
                                "--stream-share", "1", "--timeout", "20s", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "ok"), 2) << run.out;
  EXPECT_EQ(Int(report.at("itl_ms"), "count"), 2 * 999);
  EXPECT_EQ(Num(report.at("completion_tokens"), "mean"), 1000);
}

TEST_F(LoadH2Test, ThrottledAnswersAreCountedWithTheirRetryAfter) {
  StartMock({"--fault", "status=429,count=7,retry_after_ms=2500"});
  const CtlResult run = LoadH2({"--rpm", "600", "--duration", "2s", "--prompt-tokens", "20",
                                "--completion-tokens", "5", "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Protocol(report), "h2");
  EXPECT_EQ(Int(report, "sent"), 20);
  EXPECT_EQ(Int(report, "throttled"), 7);
  EXPECT_EQ(Int(report, "ok"), 13);
  EXPECT_EQ(Int(report, "errors"), 0);
  const boost::json::value& retry = report.at("retry_after");
  EXPECT_EQ(Int(retry, "count"), 7);
  EXPECT_EQ(Int(retry, "total_ms"), 7 * 2500);
  EXPECT_EQ(Int(retry, "max_ms"), 2500);
  EXPECT_EQ(Int(report.at("completion_tokens"), "total"), 13 * 5);
  const boost::json::value stats = MockStats();
  EXPECT_EQ(Int(Gpt4o(stats), "requests"), 20) << "a 429 is never retried";
  EXPECT_EQ(Connections(stats, "h2"), 1);
}

TEST_F(LoadH2Test, ResetStreamsAndTimeoutsAreErrorsOfTheirOwnKind) {
  // The first two streams are reset after one event (RST_STREAM INTERNAL_ERROR), the next two
  // never answered; the 2 s --timeout resets those.
  StartMock({"--fault", "mode=cut,count=2,cut_after_chunks=1;mode=hang,count=2"});
  const CtlResult run = LoadH2({"--rpm", "1200", "--duration", "500ms", "--completion-tokens", "5",
                                "--stream-share", "1", "--timeout", "2s", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 10);
  EXPECT_EQ(Int(report, "ok"), 6);
  EXPECT_EQ(Int(report, "errors"), 4);
  EXPECT_EQ(Int(report.at("errors_by_kind"), "h2_reset"), 2);
  EXPECT_EQ(Int(report.at("errors_by_kind"), "timeout"), 2);
  const boost::json::value stats = MockStats();
  EXPECT_EQ(Int(Gpt4o(stats), "requests"), 10) << "a reset stream is not sent again";
  EXPECT_EQ(Connections(stats, "h2"), 1) << "a stream's reset leaves its connection be";
}

TEST_F(LoadH2Test, AStreamRefusedUnprocessedIsSentOnceMoreOnANewConnection) {
  // The first request gets GOAWAY: refused before processing, so it goes again, once.
  StartMock({"--fault", "mode=goaway,count=1"});
  const CtlResult run = LoadH2({"--rpm", "1200", "--duration", "500ms", "--completion-tokens", "5",
                                "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Int(report, "sent"), 10);
  EXPECT_EQ(Int(report, "ok"), 10);
  EXPECT_EQ(Int(report, "errors"), 0);
  const boost::json::value stats = MockStats();
  EXPECT_EQ(Int(Gpt4o(stats), "requests"), 11) << "the refused one, and all ten answered";
  EXPECT_EQ(Int(Gpt4o(stats).at("by_status"), "0"), 1);
  EXPECT_EQ(Connections(stats, "h2"), 2);

  // Refused on the new connection too: not sent a third time.
  StartMock({"--fault", "mode=goaway,count=2"});
  const CtlResult twice =
      LoadH2({"--rpm", "1200", "--duration", "500ms", "--completion-tokens", "5", "-o", "json"});
  ASSERT_EQ(twice.exit_code, 0) << twice.err;
  const boost::json::object refused = ParseReport(twice.out);
  EXPECT_EQ(Int(refused, "ok"), 9);
  EXPECT_EQ(Int(refused, "errors"), 1);
  EXPECT_EQ(Int(refused.at("errors_by_kind"), "h2_refused"), 1);
  EXPECT_EQ(Int(Gpt4o(MockStats()), "requests"), 11);
}

TEST_F(LoadH2Test, TlsOffersH2ByAlpn) {
  StartTlsMock();
  const CtlResult run = LoadH2({"--rpm", "1200", "--duration", "500ms", "--completion-tokens", "5",
                                "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Protocol(report), "h2");
  EXPECT_EQ(Int(report, "ok"), 10);
  EXPECT_EQ(Int(report.at("ttft_ms"), "count"), 5);
  const boost::json::value stats = MockStats();
  // The probe's handshake chose h2 too; its connection closes unused.
  EXPECT_EQ(Connections(stats, "h2"), 2);
  EXPECT_EQ(Connections(stats, "http1"), 1) << "only the stats request";
}

TEST_F(LoadH2Test, ATlsTargetWhoseAlpnChoosesHttp11IsSentHttp11) {
  StartTlsMock({"--http2=false"});  // no ALPN: HTTP/1.1 only, like many servers
  const CtlResult run = LoadH2({"--rpm", "1200", "--duration", "500ms", "--completion-tokens", "5",
                                "--stream-share", "0.5", "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const boost::json::object report = ParseReport(run.out);
  EXPECT_EQ(Protocol(report), "http/1.1");
  EXPECT_EQ(Int(report, "ok"), 10);
  EXPECT_EQ(Int(report.at("ttft_ms"), "count"), 5);
  const boost::json::value stats = MockStats();
  EXPECT_EQ(Int(Gpt4o(stats), "requests"), 10);
  EXPECT_EQ(Connections(stats, "h2"), 0);
}

}  // namespace
}  // namespace spillway::test
