// The report's maths and shapes: percentiles over known samples, per-minute rows, and the JSON,
// CSV and table forms built from known stats.
#include "tools/load/load_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <string>

#include "absl/strings/str_split.h"
#include "tools/load/latency_histogram.h"
#include "tools/load/load_stats.h"

namespace spillway::load {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

Micros Ms(double ms) { return Micros(static_cast<int64_t>(ms * 1000)); }

RateShape ConstantRpm(int64_t rpm) {
  RateShape rate;
  rate.kind = RateKind::kRpm;
  rate.from = rate.to = rpm;
  rate.from_milli = rate.to_milli = rpm * kMilli;
  return rate;
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndHoldTheirValues) {
  for (int b = 0; b + 1 < LatencyHistogram::kBuckets; ++b) {
    ASSERT_EQ(LatencyHistogram::BucketHigh(b), LatencyHistogram::BucketLow(b + 1)) << b;
  }
  for (uint64_t v = 0; v < (uint64_t{1} << 36); v = v * 3 / 2 + 1) {
    const int b = LatencyHistogram::BucketOf(v);
    ASSERT_LE(LatencyHistogram::BucketLow(b), v) << v;
    ASSERT_GT(LatencyHistogram::BucketHigh(b), v) << v;
    // The width is at most 1/32 of the value: a bucket's middle is within 1/64.
    ASSERT_LE((LatencyHistogram::BucketHigh(b) - LatencyHistogram::BucketLow(b)) * 32,
              std::max<uint64_t>(v, 32))
        << v;
  }
  EXPECT_EQ(LatencyHistogram::BucketOf(uint64_t{1} << 40), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, PercentilesOfKnownSamples) {
  LatencyHistogram h;
  EXPECT_FALSE(h.PercentileMs(50).has_value());
  for (int ms = 100; ms >= 1; --ms) {  // 1..100 ms, out of order
    h.Add(Ms(ms));
  }
  EXPECT_EQ(h.count(), 100);
  // Nearest rank: p50 is the 50th sample, p90 the 90th, p99 the 99th; within 1/64.
  EXPECT_NEAR(*h.PercentileMs(50), 50, 50.0 / 64);
  EXPECT_NEAR(*h.PercentileMs(90), 90, 90.0 / 64);
  EXPECT_NEAR(*h.PercentileMs(99), 99, 99.0 / 64);
  EXPECT_NEAR(*h.PercentileMs(100), 100, 100.0 / 64);
  EXPECT_EQ(*h.MaxMs(), 100);
  EXPECT_LE(*h.PercentileMs(50), *h.PercentileMs(90));
  EXPECT_LE(*h.PercentileMs(90), *h.PercentileMs(99));
}

TEST(LatencyHistogramTest, EqualSamplesAreExactAndOutliersShow) {
  LatencyHistogram h;
  for (int i = 0; i < 1000; ++i) h.Add(Ms(7.25));
  EXPECT_EQ(*h.PercentileMs(50), 7.25);  // clamped to the least and greatest seen
  EXPECT_EQ(*h.PercentileMs(99), 7.25);
  for (int i = 0; i < 20; ++i) h.Add(Ms(2000));  // 2 % slow answers
  EXPECT_EQ(*h.PercentileMs(50), 7.25);
  EXPECT_EQ(*h.PercentileMs(99), 2000);
  LatencyHistogram other;
  other.Add(Ms(0.01));
  h.Merge(other);
  EXPECT_EQ(h.count(), 1021);
  EXPECT_EQ(*h.PercentileMs(0.01), 0.01);
}

RequestResult Ok(double e2e_ms, bool stream, const std::string& backend = "") {
  RequestResult r;
  r.outcome = Outcome::kOk;
  r.status = 200;
  r.stream = stream;
  r.e2e = Ms(e2e_ms);
  if (stream) r.ttft = Ms(e2e_ms / 4);
  r.prompt_tokens = 200;
  r.completion_tokens = 50;
  r.backend = backend;
  return r;
}

RequestResult Throttled(int64_t retry_ms) {
  RequestResult r;
  r.outcome = Outcome::kThrottled;
  r.status = 429;
  r.retry_after = milliseconds(retry_ms);
  return r;
}

// Minute 0: 3 sent (2 ok, 1 throttled); minute 1: nothing; minute 2: 2 sent (1 ok from b,
// 1 failed). The run took 125 s.
LoadStats Example() {
  LoadStats stats;
  const int64_t m0 = stats.RecordSent(seconds(0), true, std::nullopt);
  stats.RecordTokenGap(m0, Ms(2));
  stats.RecordTokenGap(m0, Ms(4));
  stats.RecordResult(m0, Ok(100, true, "a/chat"));
  const int64_t m0b = stats.RecordSent(milliseconds(59'999), false, Ms(30));
  stats.RecordResult(m0b, Ok(300, false, "a/chat"));
  stats.RecordResult(stats.RecordSent(seconds(30), false, std::nullopt), Throttled(1500));
  const int64_t m2 = stats.RecordSent(seconds(120), false, std::nullopt);
  stats.RecordResult(m2, Ok(200, false, "b,chat"));
  RequestResult failed;
  failed.error_kind = "http_500";
  stats.RecordResult(stats.RecordSent(seconds(124), false, std::nullopt), failed);
  stats.Finish(seconds(125));
  return stats;
}

TEST(LoadStatsTest, PerMinuteBucketingByTheMinuteSent) {
  const LoadStats stats = Example();
  ASSERT_EQ(stats.minutes().size(), 3u);
  const LoadCounters& m0 = *stats.minutes()[0];
  EXPECT_EQ(m0.sent, 3);
  EXPECT_EQ(m0.ok, 2);
  EXPECT_EQ(m0.throttled, 1);
  EXPECT_EQ(m0.streamed, 1);
  EXPECT_EQ(m0.delayed, 1);
  EXPECT_EQ(m0.delayed_max, Ms(30));
  EXPECT_EQ(m0.itl.count(), 2);
  EXPECT_EQ(m0.ttft.count(), 1);
  EXPECT_EQ(m0.e2e.count(), 2);
  EXPECT_EQ(m0.retry_after_total_ms, 1500);
  EXPECT_EQ(stats.minutes()[1]->sent, 0);
  EXPECT_EQ(stats.minutes()[2]->sent, 2);
  EXPECT_EQ(stats.minutes()[2]->errors, 1);
  EXPECT_EQ(stats.MinuteSeconds(0), 60);
  EXPECT_EQ(stats.MinuteSeconds(2), 5);
  const LoadCounters& t = stats.total();
  EXPECT_EQ(t.sent, 5);
  EXPECT_EQ(t.ok, 3);
  EXPECT_EQ(t.throttled, 1);
  EXPECT_EQ(t.errors, 1);
  EXPECT_EQ(t.errors_by_kind.at("http_500"), 1);
  EXPECT_EQ(t.completion_tokens, 150);
  EXPECT_EQ(t.usage_reports, 3);
  EXPECT_EQ(t.by_backend.at("a/chat"), 2);
  EXPECT_EQ(t.e2e.count(), 3) << "only ok answers have an end-to-end latency";
}

TEST(LoadStatsTest, BackendNamesAreBounded) {
  LoadStats stats;
  for (size_t i = 0; i < kMaxBackendNames + 10; ++i) {
    stats.RecordResult(stats.RecordSent(seconds(0), false, std::nullopt),
                       Ok(1, false, "backend-" + std::to_string(i)));
  }
  EXPECT_EQ(stats.total().by_backend.size(), kMaxBackendNames + 1);
  EXPECT_EQ(stats.total().by_backend.at("(other)"), 10);
}

TEST(LoadReportTest, JsonShape) {
  LoadOptions options;
  options.target = "http://127.0.0.1:1";
  options.routes = {"gpt-4o"};
  options.api_keys = {{"key-1", "never-printed"}};
  options.rate = ConstantRpm(3);
  options.duration = seconds(125);
  const std::string text = RenderLoadJson(options, Example());
  EXPECT_THAT(text, Not(HasSubstr("never-printed")));
  EXPECT_THAT(text, Not(HasSubstr("E1"))) << "numbers as people write them";
  const boost::json::object json = boost::json::parse(text).as_object();
  EXPECT_EQ(json.at("sent").as_int64(), 5);
  EXPECT_EQ(json.at("ok").as_int64(), 3);
  EXPECT_EQ(json.at("throttled").as_int64(), 1);
  EXPECT_EQ(json.at("errors").as_int64(), 1);
  for (const char* key : {"ttft_ms", "e2e_ms", "itl_ms"}) {
    const boost::json::object& p = json.at(key).as_object();
    for (const char* q : {"p50", "p90", "p99"}) {
      EXPECT_TRUE(p.at(q).is_number()) << key << "." << q;
    }
    EXPECT_LE(p.at("p50").to_number<double>(), p.at("p99").to_number<double>());
  }
  EXPECT_NEAR(json.at("e2e_ms").at("p50").to_number<double>(), 200, 200.0 / 64);
  EXPECT_EQ(json.at("tokens_per_second").to_number<double>(), 150.0 / 125);
  EXPECT_EQ(json.at("prompt_tokens").at("total").as_int64(), 600);
  EXPECT_EQ(json.at("prompt_tokens").at("mean").to_number<double>(), 200);
  EXPECT_EQ(json.at("completion_tokens").at("mean").to_number<double>(), 50);
  EXPECT_EQ(json.at("retry_after").at("count").as_int64(), 1);
  EXPECT_EQ(json.at("retry_after").at("total_ms").as_int64(), 1500);
  EXPECT_EQ(json.at("retry_after").at("max_ms").as_int64(), 1500);
  EXPECT_EQ(json.at("by_backend").at("a/chat").as_int64(), 2);
  EXPECT_EQ(json.at("by_backend").at("b,chat").as_int64(), 1);
  EXPECT_EQ(json.at("shape").at("rpm").as_int64(), 3);
  const boost::json::array& minutes = json.at("minutes").as_array();
  ASSERT_EQ(minutes.size(), 3u);
  EXPECT_EQ(minutes[0].at("sent").as_int64(), 3);
  EXPECT_EQ(minutes[0].at("tokens_per_second").to_number<double>(), 1.667) << "3 decimals";
  EXPECT_TRUE(minutes[1].at("ttft_ms").at("p50").is_null()) << "no sample: null, not 0";
  EXPECT_EQ(minutes[2].at("seconds").to_number<double>(), 5);
  EXPECT_EQ(minutes[2].at("errors_by_kind").at("http_500").as_int64(), 1);
}

// Cells of a CSV line (no quoted commas in these rows).
std::vector<std::string> Cells(const std::string& line) { return absl::StrSplit(line, ','); }

// A row's cells as expected: "~X" is a percentile, within the histogram's 1/64 of X.
void ExpectRow(const std::string& line, const std::vector<std::string>& expected) {
  const std::vector<std::string> cells = Cells(line);
  ASSERT_EQ(cells.size(), expected.size()) << line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (expected[i].rfind("~", 0) == 0) {
      const double want = std::stod(expected[i].substr(1));
      EXPECT_NEAR(std::stod(cells[i]), want, want / 64) << "column " << i << " of " << line;
    } else {
      EXPECT_EQ(cells[i], expected[i]) << "column " << i << " of " << line;
    }
  }
}

TEST(LoadReportTest, CsvHasOneRowAMinuteAndABackendColumnEach) {
  const std::string csv = RenderLoadCsv(LoadOptions{}, Example());
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "minute,seconds,sent,ok,throttled,errors,streamed,delayed,ttft_p50_ms,ttft_p90_ms,"
            "ttft_p99_ms,itl_p50_ms,itl_p90_ms,itl_p99_ms,e2e_p50_ms,e2e_p90_ms,e2e_p99_ms,"
            "tokens_per_second,prompt_tokens,completion_tokens,retry_after_count,"
            "retry_after_total_ms,retry_after_max_ms,backend:a/chat,\"backend:b,chat\"");
  ExpectRow(lines[1], {"0",   "60",  "3",  "2",    "1",    "0",   "1",    "1",    "25",
                       "25",  "25",  "~2", "~4",   "~4",   "100", "~300", "~300", "1.667",
                       "400", "100", "1",  "1500", "1500", "2",   "0"});
  ExpectRow(lines[2], {"1", "60", "0", "0", "0", "0", "0", "0", "",  "",  "",  "", "",
                       "",  "",   "",  "",  "0", "0", "0", "0", "0", "0", "0", "0"});
  // The last cell is b,chat's count: the CSV quotes only the header's name.
  ExpectRow(lines[3], {"2", "5",   "2",   "1",   "0",  "1",   "0",  "0", "",  "",  "",  "", "",
                       "",  "200", "200", "200", "10", "200", "50", "0", "0", "0", "0", "1"});
}

TEST(LoadReportTest, TableSaysTheTotalsAndEachMinute) {
  LoadOptions options;
  options.target = "http://127.0.0.1:1";
  options.routes = {"gpt-4o"};
  options.api_keys = {{"key-1", "never-printed"}};
  options.rate = ConstantRpm(3);
  options.duration = seconds(125);
  const std::string table = RenderLoadTable(options, Example());
  EXPECT_THAT(table, Not(HasSubstr("never-printed")));
  EXPECT_THAT(table, HasSubstr("SENT   OK   429   OTHER"));
  EXPECT_THAT(table, HasSubstr("retry-after   1 answers, 1500 ms in all, 1500 ms at most"));
  EXPECT_THAT(table, HasSubstr("errors        http_500 1"));
  EXPECT_THAT(table, HasSubstr("backends      a/chat 2, b,chat 1"));
  EXPECT_THAT(table, HasSubstr("MINUTE   SECONDS"));
  const std::vector<std::string> lines = absl::StrSplit(table, '\n');
  int minute_rows = 0;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find_last_not_of(' ') + 1, line.size()) << "no trailing spaces: " << line;
    minute_rows +=
        (line.rfind("0 ", 0) == 0 || line.rfind("1 ", 0) == 0 || line.rfind("2 ", 0) == 0);
  }
  EXPECT_EQ(minute_rows, 3);
}

// Two keys and two routes: requests 0..5 go round (a r1, a r2, b r1, b r2); request 2 is
// throttled and request 3 fails; request 5 is sent in minute 1.
LoadOptions TwoByTwo() {
  LoadOptions options;
  options.target = "http://127.0.0.1:1";
  options.api_keys = {{"team-a", "never-printed-a"}, {"key-2", "never-printed-b"}};
  options.routes = {"r1", "r2"};
  options.rate = ConstantRpm(5);
  options.duration = seconds(70);
  return options;
}

LoadStats TwoByTwoStats() {
  LoadStats stats;
  for (int64_t i = 0; i < 6; ++i) {
    const size_t key = static_cast<size_t>(i % 4) / 2;
    const size_t route = static_cast<size_t>(i % 4) % 2;
    const int64_t minute =
        stats.RecordSent(seconds(i == 5 ? 61 : i), false, std::nullopt, key, route);
    RequestResult failed;
    failed.error_kind = "connect";
    stats.RecordResult(minute,
                       i == 2   ? Throttled(10)
                       : i == 3 ? failed
                                : Ok(10, false),
                       key, route);
  }
  stats.Finish(seconds(70));
  return stats;
}

TEST(LoadReportTest, ByTenantAndByRouteInJson) {
  const std::string text = RenderLoadJson(TwoByTwo(), TwoByTwoStats());
  EXPECT_THAT(text, Not(HasSubstr("never-printed")));
  const boost::json::object json = boost::json::parse(text).as_object();
  EXPECT_EQ(boost::json::serialize(json.at("by_tenant")),
            R"({"team-a":{"sent":4,"ok":4,"throttled":0,"errors":0},)"
            R"("key-2":{"sent":2,"ok":0,"throttled":1,"errors":1}})");
  EXPECT_EQ(boost::json::serialize(json.at("by_route")),
            R"({"r1":{"sent":3,"ok":2,"throttled":1,"errors":0},)"
            R"("r2":{"sent":3,"ok":2,"throttled":0,"errors":1}})");
  const boost::json::array& minutes = json.at("minutes").as_array();
  ASSERT_EQ(minutes.size(), 2u);
  EXPECT_EQ(minutes[1].at("by_tenant").at("team-a").at("sent").as_int64(), 1);
  EXPECT_EQ(minutes[1].at("by_tenant").at("key-2").at("sent").as_int64(), 0) << "listed at 0";
  EXPECT_EQ(minutes[1].at("by_route").at("r2").at("ok").as_int64(), 1);
  EXPECT_EQ(json.at("route").as_string(), "r1,r2");
  EXPECT_EQ(boost::json::serialize(json.at("shape").at("tenants")), R"(["team-a","key-2"])");
  EXPECT_EQ(json.at("shape").at("rate").as_string(), "constant");
  EXPECT_EQ(json.at("shape").at("rpm").as_int64(), 5);
  EXPECT_EQ(json.at("shape").at("protocol").as_string(), "http/1.1") << "unless told otherwise";
}

TEST(LoadReportTest, TheProtocolUsedIsInTheShapeAndTheTablesFirstLine) {
  LoadStats stats = TwoByTwoStats();
  stats.SetProtocol("h2");
  const boost::json::object json =
      boost::json::parse(RenderLoadJson(TwoByTwo(), stats)).as_object();
  EXPECT_EQ(json.at("shape").at("protocol").as_string(), "h2");
  const std::string table = RenderLoadTable(TwoByTwo(), stats);
  EXPECT_THAT(table.substr(0, table.find('\n')), testing::EndsWith(", concurrency 64, over h2"));
  EXPECT_THAT(RenderLoadTable(TwoByTwo(), TwoByTwoStats()), HasSubstr(", over http/1.1\nran "));
}

TEST(LoadReportTest, TenantAndRouteSectionsAndColumnsOnlyWhenSeveral) {
  const std::string table = RenderLoadTable(TwoByTwo(), TwoByTwoStats());
  EXPECT_THAT(table, Not(HasSubstr("never-printed")));
  EXPECT_THAT(table, HasSubstr("load http://127.0.0.1:1 routes r1, r2 keys team-a, key-2: 5 rpm"));
  EXPECT_THAT(table, HasSubstr("TENANT   SENT   OK   429   OTHER\n"
                               "team-a      4    4     0       0\n"
                               "key-2       2    0     1       1\n"));
  EXPECT_THAT(table, HasSubstr("ROUTE   SENT   OK   429   OTHER\n"
                               "r1         3    2     1       0\n"
                               "r2         3    2     0       1\n"));
  const std::string csv = RenderLoadCsv(TwoByTwo(), TwoByTwoStats());
  const std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << "still one row a minute";
  EXPECT_THAT(lines[0],
              testing::EndsWith(",retry_after_max_ms,tenant:team-a:sent,tenant:team-a:ok,"
                                "tenant:team-a:throttled,tenant:team-a:errors,tenant:key-2:sent,"
                                "tenant:key-2:ok,tenant:key-2:throttled,tenant:key-2:errors,"
                                "route:r1:sent,route:r1:ok,route:r1:throttled,route:r1:errors,"
                                "route:r2:sent,route:r2:ok,route:r2:throttled,route:r2:errors"));
  EXPECT_THAT(lines[1], testing::EndsWith(",3,3,0,0,2,0,1,1,3,2,1,0,2,1,0,1"));
  EXPECT_THAT(lines[2], testing::EndsWith(",1,1,0,0,0,0,0,0,0,0,0,0,1,1,0,0"));
  // One key and one route: the report is as it always was.
  LoadOptions single = TwoByTwo();
  single.api_keys.resize(1);
  single.routes.resize(1);
  EXPECT_THAT(RenderLoadTable(single, Example()), Not(HasSubstr("TENANT")));
  EXPECT_THAT(RenderLoadCsv(single, Example()), Not(HasSubstr("tenant:")));
  EXPECT_THAT(RenderLoadCsv(single, Example()), Not(HasSubstr("route:")));
}

TEST(LoadReportTest, NumbersPrintShort) {
  EXPECT_EQ(FormatNumber(12.5), "12.5");
  EXPECT_EQ(FormatNumber(60), "60");
  EXPECT_EQ(FormatNumber(1.0 / 3), "0.333");
  EXPECT_EQ(FormatNumber(-0.0001), "0");
  EXPECT_EQ(FormatNumber(0), "0");
  EXPECT_FALSE(Mean(5, 0).has_value());
  EXPECT_EQ(*Mean(5, 2), 2.5);
}

}  // namespace
}  // namespace spillway::load
