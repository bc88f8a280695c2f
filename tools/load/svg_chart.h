// A small dependency-free SVG line chart: panels stacked over one time axis, each with a left
// and an optional right value axis, tick labels, a legend, and one polyline per series (split
// where a series has no value). Pure text out, so it is tested as text.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace spillway::load {

struct ChartSeries {
  std::string name;   // the legend's text: "ok/s"
  std::string id;     // the polyline's class: "ok", "ttft-p50"
  std::string color;  // an SVG color: "#1b9e77"
  bool right_axis = false;
  bool dashed = false;
  std::vector<std::optional<double>> values;  // point i at x = (i + 0.5) × the step; none: a gap
};

struct ChartPanel {
  std::string id;  // the panel's group id: "throughput"
  std::string title;
  std::string left_label;   // the left axis: "requests a second"
  std::string right_label;  // empty: no right axis
  std::vector<ChartSeries> series;
};

struct ChartSpec {
  std::string title;
  double x_step = 1;    // seconds between points
  size_t points = 0;    // the x axis spans points × x_step seconds
  double x_unit = 1;    // seconds a tick label counts: 1 or 60
  std::string x_label;  // "seconds from the start"
  std::vector<ChartPanel> panels;
};

// The whole SVG document.
std::string RenderSvgChart(const ChartSpec& spec);

// Tick values 0, s, 2s, ... up to the first at or above `max` (0 < max), s being 1, 2 or 5
// times a power of ten that gives about `target` steps. [0, 1] for a max of 0 or less.
std::vector<double> NiceTicks(double max, int target);

// `text` with &, <, >, " and ' as XML entities.
std::string XmlEscape(absl::string_view text);

}  // namespace spillway::load
