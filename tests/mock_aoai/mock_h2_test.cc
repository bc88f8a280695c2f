// HTTP/2 against the real binary: h2c by prior knowledge and h2 by TLS ALPN next to HTTP/1.1 on
// the same port, many streams on one connection, flow control, and faults, limits and stats
// behaving per stream as they do per HTTP/1.1 request. Clients: curl (an independent HTTP/2
// implementation) and H2TestClient (for frames, resets and windows curl does not show).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/h2_test_client.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/child_process.h"
#include "tests/support/sse.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls_files.h"

namespace spillway::mock {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::Le;

constexpr char kCurl[] = "/usr/bin/curl";

struct CurlRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// curl -s with `args`; the test is skipped by the caller when curl is missing.
CurlRun Curl(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"-s", "--no-progress-meter", "--max-time", "20"};
  all.insert(all.end(), args.begin(), args.end());
  CurlRun run;
  test::ChildProcessOptions options;
  options.name = "curl";
  options.echo = false;
  absl::StatusOr<std::unique_ptr<test::ChildProcess>> curl =
      test::ChildProcess::Start(kCurl, all, options);
  if (!curl.ok()) {
    run.output = std::string(curl.status().message());
    return run;
  }
  absl::StatusOr<int> code = (*curl)->Wait(absl::Seconds(30));
  run.exit_code = code.ok() ? *code : -1;
  run.output = (*curl)->Output();
  return run;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

#define SPILLWAY_REQUIRE_CURL()              \
  if (access(kCurl, X_OK) != 0) {            \
    GTEST_SKIP() << "curl is not installed"; \
  }

std::string ChatUrl(const std::string& scheme, int port, absl::string_view deployment = "gpt-4o") {
  return absl::StrCat(scheme, "://127.0.0.1:", port, ChatPath(deployment));
}

boost::json::value Stats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  return Json(MustSend(client, "GET", "/mock/stats").body);
}

int64_t Connections(const boost::json::value& stats, const char* protocol) {
  return stats.at("connections").at(protocol).as_int64();
}

std::unique_ptr<H2TestClient> MustConnect(const test::MockAoaiProcess& mock,
                                          int32_t window = 65535) {
  absl::StatusOr<std::unique_ptr<H2TestClient>> client = H2TestClient::Connect(mock.port(), window);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

std::string Header(const H2TestClient::Stream& stream, absl::string_view name) {
  for (const auto& [key, value] : stream.headers) {
    if (key == name) return value;
  }
  return "";
}

bool HasHeader(const H2TestClient::Stream& stream, absl::string_view name) {
  for (const auto& [key, value] : stream.headers) {
    if (key == name) return true;
  }
  return false;
}

TEST(MockH2Test, ChatCompletionOverH2cWithCurl) {
  SPILLWAY_REQUIRE_CURL();
  SPILLWAY_START_MOCK(mock, {});
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string body_file = dir->path() + "/body";
  const std::string head_file = dir->path() + "/head";
  const CurlRun run = Curl({"--http2-prior-knowledge", "-H", "content-type: application/json", "-d",
                            ChatBody("hello"), "-o", body_file, "-D", head_file, "-w",
                            "%{http_code} %{http_version}", ChatUrl("http", mock->port())});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "200 2");
  EXPECT_EQ(Str(Json(ReadFile(body_file)).at("object")), "chat.completion");
  const std::string head = ReadFile(head_file);
  EXPECT_THAT(head, HasSubstr("x-ms-region: eastus2"));
  EXPECT_THAT(head, HasSubstr("content-length: "));
  EXPECT_THAT(head, ::testing::Not(HasSubstr("onnection:")));
  EXPECT_EQ(Connections(Stats(*mock), "h2"), 1);
}

TEST(MockH2Test, StreamIsOneDataFramePerEventEndingWithDone) {
  SPILLWAY_START_MOCK(mock, {"--ms-per-token", "1"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t id = client->Submit(
      "POST", ChatPath("gpt-4o"),
      ChatBody("hi", R"("stream":true,"max_tokens":5,"stream_options":{"include_usage":true})"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  const H2TestClient::Stream& stream = client->stream(id);
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(stream.error_code, NGHTTP2_NO_ERROR);
  EXPECT_EQ(Header(stream, "content-type"), "text/event-stream");
  EXPECT_FALSE(HasHeader(stream, "transfer-encoding"));
  const std::vector<std::string> events = test::ParseSseData(stream.body);
  // prompt filter, 5 deltas, finish, usage, [DONE]
  ASSERT_EQ(events.size(), 9u) << stream.body;
  EXPECT_TRUE(Json(events[0]).at("choices").as_array().empty());
  EXPECT_EQ(Str(Json(events[6]).at("choices").at(0).at("finish_reason")), "length");
  const int64_t total = Json(events[7]).at("usage").at("total_tokens").as_int64();
  EXPECT_EQ(events[8], "[DONE]");
  EXPECT_EQ(stream.data_frames.size(), events.size());
  // The usage the stream reported is what the stats count (Settle ran, delivered).
  const boost::json::value stats = Stats(*mock);
  const boost::json::value& deployment = stats.at("deployments").at("gpt-4o");
  EXPECT_EQ(deployment.at("usage").at("total_tokens").as_int64(), total);
  EXPECT_EQ(deployment.at("in_flight").as_int64(), 0);
}

TEST(MockH2Test, RateLimiter429CarriesRetryAfter) {
  // 600 TPM over a 1 s window: 10 tokens; each request is charged 1 + 9.
  SPILLWAY_START_MOCK(mock, {"--deployments", "small:tpm=600:rpm=6000", "--window-seconds", "1"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const std::string body = ChatBody("hi", R"("max_tokens":9)");
  const int32_t first = client->Submit("POST", ChatPath("small"), body);
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  const int32_t second = client->Submit("POST", ChatPath("small"), body);
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(first).status, 200);
  const H2TestClient::Stream& limited = client->stream(second);
  ASSERT_EQ(limited.status, 429) << limited.body;
  int64_t retry_ms = 0;
  EXPECT_TRUE(absl::SimpleAtoi(Header(limited, "retry-after-ms"), &retry_ms));
  EXPECT_GT(retry_ms, 0);
  EXPECT_EQ(Header(limited, "retry-after"), "1");
  EXPECT_EQ(Header(limited, "x-ratelimit-limit-tokens"), "600");
  EXPECT_EQ(Str(Json(limited.body).at("error").at("code")), "429");
  EXPECT_EQ(Stats(*mock).at("deployments").at("small").at("by_status").at("429").as_int64(), 1);
}

class MockH2TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<test::TlsFiles> files = test::MakeSelfSignedCert(dir_.path());
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = *files;
    mock_ = StartMock({"--tls-cert", files_.cert_file, "--tls-key", files_.key_file});
    ASSERT_NE(mock_, nullptr);
  }

  // POSTs a chat body to each of `urls`, discarding the answers; `-w` output remains.
  CurlRun CurlTls(std::vector<std::string> args, int urls = 1) {
    args.insert(args.begin(), {"--cacert", files_.cert_file, "-H", "content-type: application/json",
                               "-d", ChatBody("hi")});
    for (int i = 0; i < urls; ++i) {
      args.insert(args.end(), {"-o", "/dev/null", ChatUrl("https", mock_->port())});
    }
    return Curl(args);
  }

  test::ScopedTempDir dir_ = *test::ScopedTempDir::Create();
  test::TlsFiles files_;
  std::unique_ptr<test::MockAoaiProcess> mock_;
};

TEST_F(MockH2TlsTest, AlpnChoosesH2WhenOfferedAndHttp11Otherwise) {
  SPILLWAY_REQUIRE_CURL();
  CurlRun run = CurlTls({"--http2", "-w", "%{http_code} %{http_version}"});
  EXPECT_EQ(run.output, "200 2");
  run = CurlTls({"--http1.1", "-w", "%{http_code} %{http_version}"});
  EXPECT_EQ(run.output, "200 1.1");
  run = CurlTls({"--http2", "--no-alpn", "-w", "%{http_code} %{http_version}"});
  EXPECT_EQ(run.output, "200 1.1");
  // Several transfers multiplexed on one h2 connection.
  run = CurlTls({"--http2", "--parallel", "-w", "%{http_code} %{http_version} %{num_connects}\n"},
                /*urls=*/4);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  int connects = 0;
  for (absl::string_view line : absl::StrSplit(run.output, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    ASSERT_EQ(fields.size(), 3u) << run.output;
    EXPECT_EQ(fields[0], "200");
    EXPECT_EQ(fields[1], "2");
    connects += std::stoi(fields[2]);
  }
  EXPECT_EQ(connects, 1) << run.output;

  test::HttpClient client("127.0.0.1", mock_->port(), /*tls=*/true, files_.cert_file);
  const boost::json::value stats = Json(MustSend(client, "GET", "/mock/stats").body);
  EXPECT_EQ(Connections(stats, "h2"), 2);
  EXPECT_EQ(Connections(stats, "http1"), 3);  // --http1.1, --no-alpn, this client
}

TEST(MockH2Test, Http11IsStillServedOnTheSamePort) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
  absl::StatusOr<test::HttpResponse> streamed =
      client.SendStreaming("POST", ChatPath("gpt-4o"), {}, ChatBody("hi", R"("stream":true)"),
                           [](absl::string_view, absl::Time) {});
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  EXPECT_THAT(streamed->body, HasSubstr("data: [DONE]"));
  EXPECT_TRUE(client.connected());  // keep-alive as before
  std::unique_ptr<H2TestClient> h2 = MustConnect(*mock);
  ASSERT_NE(h2, nullptr);
  const int32_t id = h2->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi"));
  ASSERT_TRUE(h2->RunUntilAllClosed().ok());
  EXPECT_EQ(h2->stream(id).status, 200);
  const boost::json::value stats = Json(MustSend(client, "GET", "/mock/stats").body);
  EXPECT_EQ(Connections(stats, "http1"), 1);
  EXPECT_EQ(Connections(stats, "h2"), 1);
  // The counts start over with the stats.
  EXPECT_EQ(MustSend(client, "POST", "/mock/reset").status, 200);
  const boost::json::value reset = Json(MustSend(client, "GET", "/mock/stats").body);
  EXPECT_EQ(Connections(reset, "http1"), 0);
  EXPECT_EQ(Connections(reset, "h2"), 0);
}

TEST(MockH2Test, ManyStreamsMultiplexedOnOneConnection) {
  SPILLWAY_START_MOCK(mock, {"--ms-per-token", "2"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  std::vector<int32_t> streams;
  std::vector<int32_t> whole;
  for (int i = 0; i < 200; ++i) {
    streams.push_back(client->Submit("POST", ChatPath("gpt-4o"),
                                     ChatBody("hi", R"("stream":true,"max_tokens":12)")));
  }
  for (int i = 0; i < 50; ++i) {
    whole.push_back(client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi")));
  }
  ASSERT_TRUE(client->RunUntilAllClosed(absl::Seconds(30)).ok());
  for (int32_t id : streams) {
    const H2TestClient::Stream& stream = client->stream(id);
    ASSERT_EQ(stream.status, 200) << id;
    const std::vector<std::string> events = test::ParseSseData(stream.body);
    ASSERT_EQ(events.size(), 15u) << id;  // prompt filter, 12 deltas, finish, [DONE]
    EXPECT_EQ(events.back(), "[DONE]");
  }
  for (int32_t id : whole) {
    EXPECT_EQ(Str(Json(client->stream(id).body).at("object")), "chat.completion");
  }
  EXPECT_FALSE(client->goaway_received());
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(Connections(stats, "h2"), 1);
  EXPECT_EQ(stats.at("deployments").at("gpt-4o").at("by_status").at("200").as_int64(), 250);
  EXPECT_EQ(stats.at("deployments").at("gpt-4o").at("in_flight").as_int64(), 0);
}

TEST(MockH2Test, ClientFlowControlWindowIsRespected) {
  SPILLWAY_START_MOCK(mock, {"--completion-tokens", "40"});
  // 100-byte stream windows: every event and body must be split across WINDOW_UPDATEs.
  std::unique_ptr<H2TestClient> client = MustConnect(*mock, /*window=*/100);
  ASSERT_NE(client, nullptr);
  std::vector<int32_t> ids;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi", R"("stream":true)")));
    ids.push_back(client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi")));
  }
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  for (size_t i = 0; i < ids.size(); ++i) {
    const H2TestClient::Stream& stream = client->stream(ids[i]);
    EXPECT_EQ(stream.error_code, NGHTTP2_NO_ERROR);
    EXPECT_THAT(stream.data_frames, Each(Le(100u)));
    if (i % 2 == 0) {
      EXPECT_EQ(test::ParseSseData(stream.body).back(), "[DONE]");
    } else {
      EXPECT_EQ(Str(Json(stream.body).at("object")), "chat.completion");
    }
  }
}

TEST(MockH2Test, AdvertisesMaxConcurrentStreams) {
  SPILLWAY_START_MOCK(mock, {"--h2-max-concurrent-streams", "7"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client
                  ->RunUntil([&] {
                    return client->remote_setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) == 7;
                  })
                  .ok());
  // More than that are queued by the client and all get through.
  std::vector<int32_t> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi", R"("stream":true)")));
  }
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  for (int32_t id : ids) {
    EXPECT_EQ(client->stream(id).status, 200);
  }
}

TEST(MockH2Test, ResetFaultResetsOnlyThatStream) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d1,d2", "--fault", "mode=reset,deployment=d2"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t ok = client->Submit("POST", ChatPath("d1"), ChatBody("hi", R"("stream":true)"));
  const int32_t reset = client->Submit("POST", ChatPath("d2"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(reset).status, 0);
  EXPECT_EQ(client->stream(reset).error_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_EQ(client->stream(ok).status, 200);
  EXPECT_EQ(test::ParseSseData(client->stream(ok).body).back(), "[DONE]");
  // The connection goes on.
  const int32_t after = client->Submit("POST", ChatPath("d1"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(after).status, 200);
  EXPECT_FALSE(client->goaway_received());
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(Connections(stats, "h2"), 1);
  EXPECT_EQ(stats.at("deployments").at("d2").at("by_status").at("0").as_int64(), 1);
}

TEST(MockH2Test, CutFaultResetsTheStreamAfterItsEvents) {
  SPILLWAY_START_MOCK(mock, {"--fault", "mode=cut,cut_after_chunks=2"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t streamed =
      client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi", R"("stream":true)"));
  const int32_t whole = client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(streamed).status, 200);
  EXPECT_EQ(client->stream(streamed).error_code, NGHTTP2_INTERNAL_ERROR);
  EXPECT_EQ(test::ParseSseData(client->stream(streamed).body).size(), 2u);
  // Non-streamed: half the body, then the reset.
  const H2TestClient::Stream& cut = client->stream(whole);
  EXPECT_EQ(cut.status, 200);
  EXPECT_EQ(cut.error_code, NGHTTP2_INTERNAL_ERROR);
  size_t content_length = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Header(cut, "content-length"), &content_length));
  EXPECT_EQ(cut.body.size(), content_length / 2);
  EXPECT_FALSE(client->goaway_received());
  EXPECT_EQ(Stats(*mock).at("deployments").at("gpt-4o").at("in_flight").as_int64(), 0);
}

TEST(MockH2Test, HangHoldsTheStreamUntilTheClientCancels) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d1,d2", "--fault", "mode=hang,deployment=d2"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t hung = client->Submit("POST", ChatPath("d2"), ChatBody("hi"));
  const int32_t ok = client->Submit("POST", ChatPath("d1"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntil([&] { return client->stream(ok).closed; }).ok());
  EXPECT_EQ(client->stream(ok).status, 200);
  EXPECT_FALSE(client->stream(hung).closed);
  EXPECT_EQ(client->stream(hung).status, 0);
  client->Cancel(hung);
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(hung).error_code, NGHTTP2_CANCEL);
  const int32_t after = client->Submit("POST", ChatPath("d1"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(after).status, 200);
}

TEST(MockH2Test, SlowDripSendsTheBodyInSmallPieces) {
  SPILLWAY_START_MOCK(mock, {"--fault", "mode=slow_drip,drip_ms=1"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t id = client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  const H2TestClient::Stream& stream = client->stream(id);
  EXPECT_EQ(Str(Json(stream.body).at("object")), "chat.completion");
  EXPECT_GT(stream.data_frames.size(), 1u);
  EXPECT_THAT(stream.data_frames, Each(Le(64u)));
}

TEST(MockH2Test, ClientResetMidStreamSettlesTheAnswer) {
  SPILLWAY_START_MOCK(mock, {"--ms-per-token", "20"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t id = client->Submit("POST", ChatPath("gpt-4o"),
                                    ChatBody("hi", R"("stream":true,"max_tokens":500)"));
  ASSERT_TRUE(client->RunUntil([&] { return !client->stream(id).data_frames.empty(); }).ok());
  client->Cancel(id);
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  // Settle ran for the abandoned answer: nothing stays in flight.
  int64_t in_flight = -1;
  for (int i = 0; i < 100 && in_flight != 0; ++i) {
    in_flight = Stats(*mock).at("deployments").at("gpt-4o").at("in_flight").as_int64();
    if (in_flight != 0) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(in_flight, 0);
  const int32_t after = client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(after).status, 200);
}

TEST(MockH2Test, BodyOverTheLimitIs413OnThatStream) {
  SPILLWAY_START_MOCK(mock, {"--body-limit", "1000"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t big = client->Submit("POST", ChatPath("gpt-4o"), ChatBody(std::string(5000, 'x')));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  const H2TestClient::Stream& stream = client->stream(big);
  EXPECT_EQ(stream.status, 413);
  EXPECT_EQ(Str(Json(stream.body).at("error").at("code")), "RequestEntityTooLarge");
  const int32_t small = client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(small).status, 200);
}

TEST(MockH2Test, IdleConnectionGetsGoaway) {
  SPILLWAY_START_MOCK(mock, {"--idle-timeout-ms", "200"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  const int32_t id = client->Submit("POST", ChatPath("gpt-4o"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_EQ(client->stream(id).status, 200);
  client->RunUntil([&] { return client->connection_closed(); }).IgnoreError();
  EXPECT_TRUE(client->goaway_received());
  EXPECT_EQ(client->goaway_error(), NGHTTP2_NO_ERROR);
  EXPECT_TRUE(client->connection_closed());
}

// The goaway fault: streams already being answered finish on the old connection; the faulted
// one and any later are refused unprocessed (REFUSED_STREAM, above the GOAWAY's last-stream-id),
// so a client may send them again; then the connection closes.
TEST(MockH2Test, GoawayFaultRefusesThatStreamAndLaterOnesWhileEarlierOnesFinish) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d1,d2", "--ms-per-token", "20", "--fault",
                             "mode=goaway,deployment=d2,count=1"});
  std::unique_ptr<H2TestClient> client = MustConnect(*mock);
  ASSERT_NE(client, nullptr);
  // Two long streams, surely handed to the handler (their heads arrived) before the fault.
  const std::string streamed = ChatBody("hi", R"("stream":true,"max_tokens":20)");
  const int32_t first = client->Submit("POST", ChatPath("d1"), streamed);
  const int32_t second = client->Submit("POST", ChatPath("d1"), streamed);
  ASSERT_TRUE(client
                  ->RunUntil([&] {
                    return client->stream(first).status != 0 && client->stream(second).status != 0;
                  })
                  .ok());
  const int32_t faulted = client->Submit("POST", ChatPath("d2"), ChatBody("hi"));
  const int32_t later = client->Submit("POST", ChatPath("d1"), ChatBody("hi"));
  ASSERT_TRUE(client->RunUntilAllClosed().ok());
  EXPECT_TRUE(client->goaway_received());
  EXPECT_EQ(client->goaway_error(), NGHTTP2_NO_ERROR);
  EXPECT_EQ(client->goaway_last_stream_id(), second);
  for (const int32_t id : {first, second}) {
    EXPECT_EQ(client->stream(id).status, 200) << id;
    EXPECT_EQ(client->stream(id).error_code, NGHTTP2_NO_ERROR) << id;
    EXPECT_EQ(test::ParseSseData(client->stream(id).body).back(), "[DONE]") << id;
  }
  for (const int32_t id : {faulted, later}) {
    EXPECT_EQ(client->stream(id).status, 0) << id;
    EXPECT_EQ(client->stream(id).error_code, NGHTTP2_REFUSED_STREAM) << id;
  }
  EXPECT_TRUE(client->RunUntil([&] { return client->connection_closed(); }).ok());
  // The refused `later` never reached the handler; the faulted one is logged as unanswered.
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("deployments").at("d1").at("requests").as_int64(), 2);
  EXPECT_EQ(stats.at("deployments").at("d2").at("by_status").at("0").as_int64(), 1);
  // A new connection is served as usual.
  std::unique_ptr<H2TestClient> again = MustConnect(*mock);
  ASSERT_NE(again, nullptr);
  const int32_t retried = again->Submit("POST", ChatPath("d2"), ChatBody("hi"));
  ASSERT_TRUE(again->RunUntilAllClosed().ok());
  EXPECT_EQ(again->stream(retried).status, 200);
  EXPECT_FALSE(again->goaway_received());
}

// Raw bytes: the preface, then a DATA frame on stream 0, which RFC 9113 makes a connection
// error. The mock answers GOAWAY(PROTOCOL_ERROR), closes, and keeps serving others.
TEST(MockH2Test, ProtocolErrorGetsGoawayAndClose) {
  SPILLWAY_START_MOCK(mock, {});
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(mock->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bytes += std::string("\0\0\0\x04\0\0\0\0\0", 9);    // SETTINGS, empty
  bytes += std::string("\0\0\x01\0\0\0\0\0\0x", 10);  // DATA on stream 0
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  std::string received;
  bool eof = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!eof && absl::Now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      eof = true;
    } else {
      received.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  EXPECT_TRUE(eof);
  uint32_t goaway_error = 0xffffffff;
  for (size_t at = 0; at + 9 <= received.size();) {
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(received[i]); };
    const size_t length = (byte(at) << 16) | (byte(at + 1) << 8) | byte(at + 2);
    if (byte(at + 3) == NGHTTP2_GOAWAY && at + 9 + 8 <= received.size()) {
      goaway_error =
          (byte(at + 13) << 24) | (byte(at + 14) << 16) | (byte(at + 15) << 8) | byte(at + 16);
    }
    at += 9 + length;
  }
  EXPECT_EQ(goaway_error, NGHTTP2_PROTOCOL_ERROR);
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
}

}  // namespace
}  // namespace spillway::mock
