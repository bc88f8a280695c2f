// See load_chart.h.
#include "tools/load/load_chart.h"

#include <algorithm>
#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/load/load_report.h"
#include "tools/load/svg_chart.h"

namespace spillway::load {
namespace {

using Values = std::vector<std::optional<double>>;

ChartSeries Series(std::string name, std::string id, std::string color, Values values,
                   bool right = false, bool dashed = false) {
  return {std::move(name), std::move(id), std::move(color), right, dashed, std::move(values)};
}

ChartPanel Throughput(const LoadOptions& options, const LoadTimeline& timeline) {
  const double width = std::chrono::duration<double>(timeline.width()).count();
  const double duration = std::chrono::duration<double>(options.duration).count();
  Values ok, throttled, errors, tokens;
  for (size_t i = 0; i < timeline.buckets().size(); ++i) {
    const TimelineBucket& b = timeline.buckets()[i];
    // The last bucket may be partly past the duration: its rates are over what it covered.
    const double seconds = std::clamp(duration - width * static_cast<double>(i), 1e-9, width);
    ok.push_back(static_cast<double>(b.ok) / seconds);
    throttled.push_back(static_cast<double>(b.throttled) / seconds);
    errors.push_back(static_cast<double>(b.errors) / seconds);
    tokens.push_back(static_cast<double>(b.completion_tokens) / seconds);
  }
  return {"throughput",
          "Throughput",
          "answers a second",
          "completion tokens a second",
          {Series("ok/s", "ok", "#1b9e77", std::move(ok)),
           Series("429/s", "throttled", "#d95f02", std::move(throttled)),
           Series("other/s", "errors", "#7570b3", std::move(errors)),
           Series("tokens/s", "tokens", "#555555", std::move(tokens), true, true)}};
}

ChartPanel Latency(const LoadTimeline& timeline) {
  Values ttft50, ttft99, e2e50, e2e99;
  for (const TimelineBucket& b : timeline.buckets()) {
    ttft50.push_back(b.ttft.PercentileMs(50));
    ttft99.push_back(b.ttft.PercentileMs(99));
    e2e50.push_back(b.e2e.PercentileMs(50));
    e2e99.push_back(b.e2e.PercentileMs(99));
  }
  return {"latency",
          "Latency",
          "milliseconds",
          "",
          {Series("TTFT p50", "ttft-p50", "#1f78b4", std::move(ttft50)),
           Series("TTFT p99", "ttft-p99", "#1f78b4", std::move(ttft99), false, true),
           Series("e2e p50", "e2e-p50", "#e31a1c", std::move(e2e50)),
           Series("e2e p99", "e2e-p99", "#e31a1c", std::move(e2e99), false, true)}};
}

}  // namespace

std::string RenderLoadChart(const LoadOptions& options, const LoadTimeline& timeline) {
  ChartSpec spec;
  spec.x_step = std::chrono::duration<double>(timeline.width()).count();
  spec.points = timeline.buckets().size();
  const bool minutes = spec.x_step * static_cast<double>(spec.points) > 600;
  spec.x_unit = minutes ? 60 : 1;
  spec.x_label = absl::StrCat(minutes ? "minutes" : "seconds", " from the start (buckets of ",
                              FormatNumber(spec.x_step), " s, by the time a request was sent)");
  spec.title = absl::StrCat(
      "spillwayctl load ", options.target, " ", TargetsText(options), ": ", RateText(options.rate),
      " for ", FormatNumber(std::chrono::duration<double>(options.duration).count()), " s");
  spec.panels = {Throughput(options, timeline), Latency(timeline)};
  return RenderSvgChart(spec);
}

}  // namespace spillway::load
