// See svg_chart.h. Layout: the title, then each panel as a legend row over an 800 × 240 plot
// with its value axes left and right and the time axis below.
#include "tools/load/svg_chart.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/load/load_report.h"

namespace spillway::load {
namespace {

constexpr double kWidth = 960;
constexpr double kLeft = 80;  // the left axis's labels
constexpr double kPlotWidth = 800;
constexpr double kTop = 40;     // the title
constexpr double kLegend = 28;  // a panel's title and legend row
constexpr double kPlotHeight = 240;
constexpr double kBelow = 44;  // the time axis's ticks (and, last, its label)
constexpr double kPanelHeight = kLegend + kPlotHeight + kBelow;

std::string Px(double v) { return absl::StrFormat("%.1f", v); }

// Where one panel's plot is, and how values map into it.
struct Plot {
  double top = 0;  // y of the plot's top edge
  double left_max = 1;
  double right_max = 1;
  double x_max = 1;  // seconds

  double X(double seconds) const { return kLeft + kPlotWidth * seconds / x_max; }
  double Y(double value, bool right) const {
    return top + kPlotHeight * (1 - value / (right ? right_max : left_max));
  }
};

double SeriesMax(const ChartPanel& panel, bool right) {
  double max = 0;
  for (const ChartSeries& series : panel.series) {
    if (series.right_axis != right) continue;
    for (const std::optional<double>& v : series.values) {
      if (v.has_value() && std::isfinite(*v)) max = std::max(max, *v);
    }
  }
  return max;
}

std::string Text(double x, double y, absl::string_view anchor, absl::string_view cls,
                 absl::string_view text, absl::string_view extra = "") {
  return absl::StrCat("<text class=\"", cls, "\" x=\"", Px(x), "\" y=\"", Px(y),
                      "\" text-anchor=\"", anchor, "\"", extra, ">", XmlEscape(text), "</text>\n");
}

std::string Line(double x1, double y1, double x2, double y2, absl::string_view cls) {
  return absl::StrCat("<line class=\"", cls, "\" x1=\"", Px(x1), "\" y1=\"", Px(y1), "\" x2=\"",
                      Px(x2), "\" y2=\"", Px(y2), "\"/>\n");
}

// A value axis: grid lines (left only), tick labels, and the axis's name turned upright.
std::string ValueAxis(const Plot& plot, const std::vector<double>& ticks, bool right,
                      absl::string_view label) {
  const double x = right ? kLeft + kPlotWidth : kLeft;
  std::string out = absl::StrCat("<g class=\"axis ", right ? "right" : "left", "\">\n");
  absl::StrAppend(&out, Line(x, plot.top, x, plot.top + kPlotHeight, "axis-line"));
  for (const double tick : ticks) {
    const double y = plot.Y(tick, right);
    if (!right) absl::StrAppend(&out, Line(kLeft, y, kLeft + kPlotWidth, y, "grid"));
    absl::StrAppend(&out, Text(right ? x + 6 : x - 6, y + 4, right ? "start" : "end", "tick",
                               FormatNumber(tick)));
  }
  const double lx = right ? x + 62 : x - 62;
  const double ly = plot.top + kPlotHeight / 2;
  absl::StrAppend(&out,
                  Text(lx, ly, "middle", "axis-label", label,
                       absl::StrCat(" transform=\"rotate(-90 ", Px(lx), " ", Px(ly), ")\"")),
                  "</g>\n");
  return out;
}

std::string TimeAxis(const ChartSpec& spec, const Plot& plot, bool last) {
  const double bottom = plot.top + kPlotHeight;
  std::string out = "<g class=\"axis x\">\n";
  absl::StrAppend(&out, Line(kLeft, bottom, kLeft + kPlotWidth, bottom, "axis-line"));
  for (const double tick : NiceTicks(plot.x_max / spec.x_unit, 8)) {
    if (tick * spec.x_unit > plot.x_max * (1 + 1e-9)) break;
    const double x = plot.X(tick * spec.x_unit);
    absl::StrAppend(&out, Line(x, bottom, x, bottom + 5, "tick-mark"),
                    Text(x, bottom + 18, "middle", "tick", FormatNumber(tick)));
  }
  if (last) {
    absl::StrAppend(
        &out, Text(kLeft + kPlotWidth / 2, bottom + 38, "middle", "axis-label", spec.x_label));
  }
  absl::StrAppend(&out, "</g>\n");
  return out;
}

// One polyline per run of points with values (a lone point drawn as a dot).
std::string SeriesLines(const ChartSpec& spec, const Plot& plot, const ChartSeries& series) {
  std::string out;
  std::vector<std::string> run;
  auto flush = [&] {
    if (run.size() == 1) run.push_back(run.front());
    if (!run.empty()) {
      absl::StrAppend(&out, "<polyline class=\"series ", series.id, "\" fill=\"none\" stroke=\"",
                      series.color, "\" stroke-width=\"1.5\" stroke-linecap=\"round\"",
                      series.dashed ? " stroke-dasharray=\"5 3\"" : "", " points=\"",
                      absl::StrJoin(run, " "), "\"/>\n");
    }
    run.clear();
  };
  for (size_t i = 0; i < series.values.size(); ++i) {
    const std::optional<double>& v = series.values[i];
    if (!v.has_value() || !std::isfinite(*v)) {
      flush();
      continue;
    }
    const double x = plot.X((static_cast<double>(i) + 0.5) * spec.x_step);
    run.push_back(absl::StrCat(Px(x), ",", Px(plot.Y(*v, series.right_axis))));
  }
  flush();
  return out;
}

// The panel's title at the left of its legend row, the series' samples and names after it.
std::string Legend(const ChartPanel& panel, double y) {
  std::string out = "<g class=\"legend\">\n";
  absl::StrAppend(&out, Text(kLeft, y, "start", "panel-title", panel.title));
  double x = kLeft + 8 * static_cast<double>(panel.title.size()) + 24;
  for (const ChartSeries& series : panel.series) {
    absl::StrAppend(&out, "<line x1=\"", Px(x), "\" y1=\"", Px(y - 4), "\" x2=\"", Px(x + 20),
                    "\" y2=\"", Px(y - 4), "\" stroke=\"", series.color, "\" stroke-width=\"2\"",
                    series.dashed ? " stroke-dasharray=\"5 3\"" : "", "/>\n");
    const std::string name =
        series.right_axis ? absl::StrCat(series.name, " (right)") : series.name;
    absl::StrAppend(&out, Text(x + 24, y, "start", "legend-item", name));
    x += 24 + 7 * static_cast<double>(name.size()) + 18;
  }
  absl::StrAppend(&out, "</g>\n");
  return out;
}

std::string Panel(const ChartSpec& spec, const ChartPanel& panel, double top, bool last) {
  Plot plot;
  plot.top = top + kLegend;
  plot.x_max = std::max(spec.x_step * static_cast<double>(spec.points), 1e-9);
  const std::vector<double> left = NiceTicks(SeriesMax(panel, false), 5);
  const std::vector<double> right = NiceTicks(SeriesMax(panel, true), 5);
  plot.left_max = left.back();
  plot.right_max = right.back();
  std::string out = absl::StrCat("<g class=\"panel\" id=\"", XmlEscape(panel.id), "\">\n");
  absl::StrAppend(&out, Legend(panel, top + 16), ValueAxis(plot, left, false, panel.left_label));
  if (!panel.right_label.empty()) {
    absl::StrAppend(&out, ValueAxis(plot, right, true, panel.right_label));
  }
  absl::StrAppend(&out, TimeAxis(spec, plot, last));
  for (const ChartSeries& series : panel.series) {
    absl::StrAppend(&out, SeriesLines(spec, plot, series));
  }
  absl::StrAppend(&out, "</g>\n");
  return out;
}

}  // namespace

std::vector<double> NiceTicks(double max, int target) {
  if (!(max > 0) || !std::isfinite(max)) return {0, 1};
  const double raw = max / std::max(target, 1);
  const double power = std::pow(10, std::floor(std::log10(raw)));
  double step = power * 10;
  for (const double m : {1.0, 2.0, 5.0}) {
    if (m * power >= raw * (1 - 1e-9)) {
      step = m * power;
      break;
    }
  }
  std::vector<double> ticks = {0};
  while (ticks.back() < max * (1 - 1e-9)) {
    ticks.push_back(step * static_cast<double>(ticks.size()));
  }
  return ticks;
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderSvgChart(const ChartSpec& spec) {
  const double height = kTop + kPanelHeight * static_cast<double>(spec.panels.size()) + 8;
  std::string out = absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"",
      kWidth, "\" height=\"", Px(height), "\" viewBox=\"0 0 ", kWidth, " ", Px(height),
      "\" font-family=\"sans-serif\" font-size=\"12\">\n<title>", XmlEscape(spec.title),
      "</title>\n<style>.grid{stroke:#e4e4e4}.axis-line,.tick-mark{stroke:#444}"
      ".panel-title{font-weight:bold}</style>\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n",
      Text(kWidth / 2, 22, "middle", "chart-title", spec.title, " font-size=\"14\""));
  for (size_t i = 0; i < spec.panels.size(); ++i) {
    absl::StrAppend(&out, Panel(spec, spec.panels[i], kTop + kPanelHeight * static_cast<double>(i),
                                i + 1 == spec.panels.size()));
  }
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace spillway::load
