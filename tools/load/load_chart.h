// The chart of a run (--chart FILE.svg): throughput over time (ok, 429 and other answers a
// second, completion tokens a second on a right axis) over latency over time (time to first
// token and end-to-end, p50 and p99), one point a timeline bucket.
#pragma once

#include <string>

#include "tools/load/load_args.h"
#include "tools/load/load_timeline.h"

namespace spillway::load {

// The SVG document (svg_chart.h). A bucket's rates are over the part of it the run sent in.
std::string RenderLoadChart(const LoadOptions& options, const LoadTimeline& timeline);

}  // namespace spillway::load
