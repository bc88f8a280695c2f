// The chart (--chart): the timeline's buckets and their bounds, and the SVG written from it:
// well-formed XML with the series' polylines, axes, tick labels and legend.
#include "tools/load/load_chart.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tools/load/svg_chart.h"

namespace spillway::load {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Every start tag has its end tag, in order (self-closing ones end themselves).
bool TagsBalance(const std::string& xml, std::string* why) {
  std::vector<std::string> open;
  const std::regex tag(R"(<(/?)([A-Za-z][\w:-]*)[^>]*?(/?)>)");
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), tag); it != std::sregex_iterator();
       ++it) {
    const std::smatch& m = *it;
    if (m[1] == "/") {
      if (open.empty() || open.back() != m[2]) {
        *why = "unexpected </" + m[2].str() + ">";
        return false;
      }
      open.pop_back();
    } else if (m[3] != "/") {
      open.push_back(m[2]);
    }
  }
  *why = open.empty() ? "" : "unclosed <" + open.back() + ">";
  return open.empty();
}

RequestResult Answer(Outcome outcome, int64_t e2e_ms, std::optional<int64_t> ttft_ms = {},
                     int64_t tokens = 0) {
  RequestResult r;
  r.outcome = outcome;
  r.e2e = milliseconds(e2e_ms);
  if (ttft_ms.has_value()) r.ttft = milliseconds(*ttft_ms);
  if (tokens > 0) r.completion_tokens = tokens;
  return r;
}

// Three seconds: a stream and an answer in the first, only 429s in the second (no latency:
// a gap in the latency lines), a stream in the third.
LoadTimeline Example() {
  LoadTimeline timeline(seconds(3));
  for (const auto& [offset, result] : std::vector<std::pair<milliseconds, RequestResult>>{
           {milliseconds(0), Answer(Outcome::kOk, 100, 20, 50)},
           {milliseconds(500), Answer(Outcome::kOk, 300, std::nullopt, 50)},
           {milliseconds(1000), Answer(Outcome::kThrottled, 1)},
           {milliseconds(1500), Answer(Outcome::kThrottled, 1)},
           {milliseconds(2000), Answer(Outcome::kOk, 200, 40, 100)}}) {
    timeline.RecordSent(offset);
    timeline.RecordResult(offset, result);
  }
  return timeline;
}

TEST(LoadTimelineTest, BucketsAreOneSecondUpToTenMinutesAndAtMost600) {
  EXPECT_EQ(TimelineBucketWidth(seconds(3)), seconds(1));
  EXPECT_EQ(TimelineBucketWidth(minutes(10)), seconds(1));
  EXPECT_EQ(TimelineBucketWidth(minutes(10) + milliseconds(1)), seconds(2));
  EXPECT_EQ(TimelineBucketWidth(minutes(30)), seconds(3));
  EXPECT_EQ(TimelineBucketWidth(std::chrono::hours(24)), seconds(150));
  for (auto d = milliseconds(1); d <= std::chrono::hours(24); d = d * 3 / 2 + milliseconds(7)) {
    const LoadTimeline timeline(d);
    ASSERT_LE(timeline.buckets().size(), kMaxTimelineBuckets) << d.count();
    ASSERT_GE(timeline.width() * static_cast<int64_t>(timeline.buckets().size()), d) << d.count();
  }
  EXPECT_EQ(LoadTimeline(milliseconds(4500)).buckets().size(), 5u);
  EXPECT_EQ(LoadTimeline(std::chrono::hours(24)).buckets().size(), 576u);
}

TEST(LoadTimelineTest, RequestsCountInTheBucketTheyWereSentIn) {
  const LoadTimeline timeline = Example();
  ASSERT_EQ(timeline.buckets().size(), 3u);
  const TimelineBucket& first = timeline.buckets()[0];
  EXPECT_EQ(first.sent, 2);
  EXPECT_EQ(first.ok, 2);
  EXPECT_EQ(first.completion_tokens, 100);
  EXPECT_EQ(first.ttft.count(), 1);
  EXPECT_EQ(first.e2e.count(), 2);
  EXPECT_EQ(*first.e2e.PercentileMs(99), 300);
  EXPECT_EQ(timeline.buckets()[1].throttled, 2);
  EXPECT_EQ(timeline.buckets()[1].e2e.count(), 0) << "a 429 has no end-to-end latency";
  // The chart's histogram is coarse (1/16 of the value at most) but exact for equal samples.
  CoarseHistogram h;
  for (int ms = 1; ms <= 100; ++ms) h.Add(milliseconds(ms));
  EXPECT_NEAR(*h.PercentileMs(50), 50, 50.0 / 16);
  EXPECT_NEAR(*h.PercentileMs(99), 99, 99.0 / 16);
}

TEST(SvgChartTest, NiceTicksAndEscapes) {
  EXPECT_THAT(NiceTicks(17, 5), ElementsAre(0, 5, 10, 15, 20));
  EXPECT_THAT(NiceTicks(10, 5), ElementsAre(0, 2, 4, 6, 8, 10));
  EXPECT_THAT(NiceTicks(0, 5), ElementsAre(0, 1));
  EXPECT_DOUBLE_EQ(NiceTicks(0.7, 5).back(), 0.8);
  EXPECT_EQ(NiceTicks(86400.0 / 60, 8).size(), 9u);  // a day in minutes: every 200
  EXPECT_EQ(XmlEscape(R"(a&b<c>"d'e)"), "a&amp;b&lt;c&gt;&quot;d&apos;e");
}

TEST(SvgChartTest, TheChartIsWellFormedWithItsSeriesAxesAndLegend) {
  LoadOptions options;
  options.target = "http://127.0.0.1:1/?a&b";  // escaped in the title
  options.routes = {"gpt-4o"};
  options.api_keys = {{"key-1", "never-printed"}};
  options.rate.kind = RateKind::kRpm;
  options.rate.from = options.rate.to = 120;
  options.duration = seconds(3);
  const std::string svg = RenderLoadChart(options, Example());
  EXPECT_THAT(svg, Not(HasSubstr("never-printed")));
  std::string why;
  EXPECT_TRUE(TagsBalance(svg, &why)) << why;

  boost::property_tree::ptree tree;
  std::istringstream in(svg);
  ASSERT_NO_THROW(boost::property_tree::read_xml(in, tree));
  const boost::property_tree::ptree& root = tree.get_child("svg");
  EXPECT_EQ(root.get<std::string>("<xmlattr>.xmlns"), "http://www.w3.org/2000/svg");
  EXPECT_THAT(root.get<std::string>("title"), HasSubstr("http://127.0.0.1:1/?a&b"));
  // Polylines by panel and series; each series' points, one a bucket.
  std::map<std::string, std::vector<std::string>> lines;
  std::vector<std::string> panels;
  std::vector<std::string> texts;
  for (const auto& [name, panel] : root) {
    if (name != "g") continue;
    panels.push_back(panel.get<std::string>("<xmlattr>.id"));
    for (const auto& [child_name, child] : panel) {
      if (child_name == "polyline") {
        lines[child.get<std::string>("<xmlattr>.class")].push_back(
            child.get<std::string>("<xmlattr>.points"));
      }
      for (const auto& [text_name, text] : child) {
        if (text_name == "text") texts.push_back(text.data());
      }
    }
  }
  EXPECT_THAT(panels, ElementsAre("throughput", "latency"));
  for (const char* series : {"series ok", "series throttled", "series errors", "series tokens"}) {
    ASSERT_EQ(lines[series].size(), 1u) << series;
    EXPECT_EQ(std::count(lines[series][0].begin(), lines[series][0].end(), ','), 3) << series;
  }
  // TTFT has no sample in the second bucket: two pieces (a lone point is drawn as a dot).
  EXPECT_EQ(lines["series ttft-p50"].size(), 2u);
  EXPECT_EQ(lines["series e2e-p99"].size(), 2u);
  for (const char* label :
       {"answers a second", "completion tokens a second", "milliseconds", "ok/s", "429/s",
        "tokens/s (right)", "TTFT p50", "e2e p99", "Throughput", "Latency"}) {
    EXPECT_THAT(texts, testing::Contains(label)) << label;
  }
  EXPECT_THAT(texts, testing::Contains(HasSubstr("seconds from the start")));
  // Tick labels: seconds 0..3 on the time axis, 0..300 ms on the latency axis.
  for (const char* tick : {"0", "1", "2", "3", "300"}) {
    EXPECT_THAT(texts, testing::Contains(tick)) << tick;
  }
}

TEST(SvgChartTest, LongRunsCountTheTimeAxisInMinutes) {
  LoadOptions options;
  options.routes = {"r"};
  options.duration = std::chrono::hours(2);
  const LoadTimeline timeline(options.duration);
  const std::string svg = RenderLoadChart(options, timeline);
  EXPECT_THAT(svg, HasSubstr("minutes from the start (buckets of 15 s"));
  EXPECT_THAT(svg, HasSubstr(">120</text>"));
  std::string why;
  EXPECT_TRUE(TagsBalance(svg, &why)) << why;
}

}  // namespace
}  // namespace spillway::load
