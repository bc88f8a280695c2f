// GET /mock/stats and POST /mock/reset against the real binary: what later gateway tests use
// to audit what reached a backend, when, and with what usage.
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"
#include "tests/support/sse.h"

namespace spillway::mock {
namespace {

boost::json::value Stats(const test::MockAoaiProcess& mock) {
  test::HttpClient client = Client(mock);
  const test::HttpResponse response = MustSend(client, "GET", "/mock/stats");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "application/json");
  return Json(response.body);
}

int64_t UsageOf(const test::HttpResponse& response, const char* field) {
  return Json(response.body).at("usage").at(field).as_int64();
}

TEST(MockStatsTest, CountsByStatusAndSumsReportedUsage) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000000:rpm=6000"});
  test::HttpClient client = Client(*mock);
  const test::HttpResponse a = MustSend(client, "POST", ChatPath("d"), ChatBody("hello world"));
  const test::HttpResponse b =
      MustSend(client, "POST", ChatPath("d"), ChatBody(std::string(50, 'y'), R"("max_tokens":7)"));
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  test::HttpResponse added =
      MustSend(client, "POST", "/mock/faults", R"({"status":429,"count":1})");
  ASSERT_EQ(added.status, 200);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 429);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("missing"), ChatBody("hi")).status, 404);

  const boost::json::value stats = Stats(*mock);
  const boost::json::value& d = stats.at("deployments").at("d");
  EXPECT_EQ(d.at("requests").as_int64(), 3);
  EXPECT_EQ(d.at("by_status").at("200").as_int64(), 2);
  EXPECT_EQ(d.at("by_status").at("429").as_int64(), 1);
  EXPECT_EQ(stats.at("deployments").at("missing").at("by_status").at("404").as_int64(), 1);
  const boost::json::value& usage = d.at("usage");
  for (const char* field : {"prompt_tokens", "completion_tokens", "total_tokens"}) {
    EXPECT_EQ(usage.at(field).as_int64(), UsageOf(a, field) + UsageOf(b, field)) << field;
  }
  EXPECT_EQ(usage.at("cached_tokens").as_int64(), 0);
}

TEST(MockStatsTest, StreamUsageCountsOnlyWhenReported) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  auto stream = [&](absl::string_view options) {
    absl::StatusOr<test::HttpResponse> response = client.SendStreaming(
        "POST", ChatPath("gpt-4o"), {},
        ChatBody("hi", absl::StrCat(R"("stream":true,"max_tokens":4)", options)),
        [](absl::string_view, absl::Time) {});
    EXPECT_TRUE(response.ok()) << response.status();
  };
  stream("");
  EXPECT_EQ(Stats(*mock).at("deployments").at("gpt-4o").at("usage").at("total_tokens").as_int64(),
            0);
  stream(R"(,"stream_options":{"include_usage":true})");
  EXPECT_EQ(Stats(*mock).at("deployments").at("gpt-4o").at("usage").at("total_tokens").as_int64(),
            1 + 4);
}

TEST(MockStatsTest, LogRecordsArrivalsInOrder) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  const double before_ms = absl::ToDoubleMilliseconds(absl::Now() - absl::UnixEpoch());
  ASSERT_EQ(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi")).status, 200);
  absl::StatusOr<test::HttpResponse> streamed =
      client.SendStreaming("POST", ChatPath("gpt-4o"), {}, ChatBody("hi", R"("stream":true)"),
                           [](absl::string_view, absl::Time) {});
  ASSERT_TRUE(streamed.ok());
  const double after_ms = absl::ToDoubleMilliseconds(absl::Now() - absl::UnixEpoch());

  const boost::json::value stats = Stats(*mock);
  const boost::json::array& log = stats.at("log").as_array();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(stats.at("log_dropped").as_int64(), 0);
  double previous = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    const double arrival = log[i].at("arrival_ms").to_number<double>();
    // Same host clock: the arrival lies between the client's send and receive.
    EXPECT_GE(arrival, before_ms - 1);
    EXPECT_LE(arrival, after_ms + 1);
    EXPECT_GE(arrival, previous);
    previous = arrival;
    EXPECT_EQ(Str(log[i].at("deployment")), "gpt-4o");
    EXPECT_EQ(log[i].at("status").as_int64(), 200);
    EXPECT_EQ(log[i].at("stream").as_bool(), i == 1);
    EXPECT_EQ(Str(log[i].at("method")), "POST");
    EXPECT_EQ(Str(log[i].at("path")), "/openai/deployments/gpt-4o/chat/completions");
  }
}

TEST(MockStatsTest, LogMarksFaults) {
  SPILLWAY_START_MOCK(mock, {"--fault", "mode=reset,count=1"});
  test::HttpClient client = Client(*mock);
  EXPECT_FALSE(client.Send("POST", ChatPath("gpt-4o"), {}, ChatBody("hi")).ok());
  const boost::json::value stats = Stats(*mock);
  const boost::json::value& entry = stats.at("log").at(0);
  EXPECT_EQ(entry.at("status").as_int64(), 0);
  EXPECT_EQ(Str(entry.at("fault")), "reset");
}

TEST(MockStatsTest, ResetClearsStatsBucketsAndFaults) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000"});  // one request per window
  test::HttpClient client = Client(*mock);
  ASSERT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 200);
  ASSERT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 429);
  ASSERT_EQ(MustSend(client, "POST", "/mock/faults", R"({"status":500,"deployment":"x"})").status,
            200);

  EXPECT_EQ(MustSend(client, "POST", "/mock/reset").status, 200);
  const boost::json::value stats = Stats(*mock);
  EXPECT_TRUE(stats.at("deployments").as_object().empty());
  EXPECT_TRUE(stats.at("log").as_array().empty());
  EXPECT_EQ(MustSend(client, "GET", "/mock/faults").body, R"({"faults":[]})");
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 200);
}

TEST(MockStatsTest, LogKeepsTheLastTenThousand) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000000000:rpm=1000000000"});
  test::HttpClient client = Client(*mock);
  for (int i = 0; i < 10'005; ++i) {
    ASSERT_EQ(MustSend(client, "POST", ChatPath("d"), R"({"messages":[{"content":"x"}]})").status,
              200);
  }
  const boost::json::value stats = Stats(*mock);
  EXPECT_EQ(stats.at("log").as_array().size(), 10'000u);
  EXPECT_EQ(stats.at("log_dropped").as_int64(), 5);
  EXPECT_EQ(stats.at("deployments").at("d").at("requests").as_int64(), 10'005);
}

}  // namespace
}  // namespace spillway::mock
