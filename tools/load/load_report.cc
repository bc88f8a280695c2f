// The table and CSV forms of the report (load_report.h); JSON is in load_report_json.cc.
#include "tools/load/load_report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace spillway::load {
namespace {

using Row = std::vector<std::string>;

std::string Cell(std::optional<double> value) {
  return value.has_value() ? FormatNumber(*value) : "";
}

// Columns padded to their widest cell, three spaces apart, the first left-aligned and the
// rest (numbers) right-aligned; empty cells print as "-".
std::string AlignedTable(const std::vector<Row>& rows) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], std::max<size_t>(row[i].size(), 1));
    }
  }
  std::string out;
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string cell = row[i].empty() ? "-" : row[i];
      const std::string pad(widths[i] - cell.size(), ' ');
      absl::StrAppend(&line, i == 0 ? "" : "   ", i == 0 ? cell + pad : pad + cell);
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

std::string CountList(const std::map<std::string, int64_t>& counts) {
  if (counts.empty()) {
    return "none";
  }
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) {
    parts.push_back(absl::StrCat(name, " ", count));
  }
  return absl::StrJoin(parts, ", ");
}

std::string LatencyTable(const LoadCounters& t) {
  std::vector<Row> rows = {{"LATENCY (ms)", "COUNT", "P50", "P90", "P99", "MAX"}};
  const std::pair<const char*, const LatencyHistogram*> histograms[] = {
      {"ttft", &t.ttft}, {"itl", &t.itl}, {"e2e", &t.e2e}};
  for (const auto& [name, h] : histograms) {
    rows.push_back({name, absl::StrCat(h->count()), Cell(h->PercentileMs(50)),
                    Cell(h->PercentileMs(90)), Cell(h->PercentileMs(99)), Cell(h->MaxMs())});
  }
  return AlignedTable(rows);
}

std::string Summary(const LoadCounters& t, double elapsed) {
  const std::string per_request = absl::StrCat(" a request, from ", t.usage_reports, " answers");
  const std::string tokens =
      t.usage_reports == 0
          ? "no usage reported"
          : absl::StrCat(
                "prompt ", t.prompt_tokens, " (", Cell(Mean(t.prompt_tokens, t.usage_reports)),
                per_request, "), completion ", t.completion_tokens, " (",
                Cell(Mean(t.completion_tokens, t.usage_reports)), " a request), ",
                FormatNumber(TokensPerSecond(t.completion_tokens, elapsed)), " generated a second");
  const std::string retry =
      t.retry_after_count == 0
          ? "none"
          : absl::StrCat(t.retry_after_count, " answers, ", t.retry_after_total_ms, " ms in all, ",
                         t.retry_after_max_ms, " ms at most");
  return absl::StrCat("tokens        ", tokens, "\nretry-after   ", retry, "\nerrors        ",
                      CountList(t.errors_by_kind), "\nbackends      ", CountList(t.by_backend),
                      "\n");
}

std::string MinuteTable(const LoadStats& stats) {
  std::vector<Row> rows = {{"MINUTE", "SECONDS", "SENT", "OK", "429", "OTHER", "TTFT_P50",
                            "TTFT_P99", "ITL_P50", "ITL_P99", "E2E_P50", "E2E_P99", "TOKENS/S",
                            "RETRY_AFTER_MS"}};
  for (size_t i = 0; i < stats.minutes().size(); ++i) {
    const LoadCounters& m = *stats.minutes()[i];
    const double seconds = stats.MinuteSeconds(static_cast<int64_t>(i));
    rows.push_back({absl::StrCat(i), FormatNumber(seconds), absl::StrCat(m.sent),
                    absl::StrCat(m.ok), absl::StrCat(m.throttled), absl::StrCat(m.errors),
                    Cell(m.ttft.PercentileMs(50)), Cell(m.ttft.PercentileMs(99)),
                    Cell(m.itl.PercentileMs(50)), Cell(m.itl.PercentileMs(99)),
                    Cell(m.e2e.PercentileMs(50)), Cell(m.e2e.PercentileMs(99)),
                    FormatNumber(TokensPerSecond(m.completion_tokens, seconds)),
                    absl::StrCat(m.retry_after_total_ms)});
  }
  return AlignedTable(rows);
}

// TENANT (or ROUTE), SENT, OK, 429, OTHER: one row each.
std::string TargetTable(const char* title, const std::vector<std::string>& names,
                        const std::vector<TargetCounts>& counts) {
  std::vector<Row> rows = {{title, "SENT", "OK", "429", "OTHER"}};
  for (size_t i = 0; i < names.size(); ++i) {
    const TargetCounts c = CountsAt(counts, i);
    rows.push_back({names[i], absl::StrCat(c.sent), absl::StrCat(c.ok), absl::StrCat(c.throttled),
                    absl::StrCat(c.errors)});
  }
  return AlignedTable(rows);
}

// The tenant and route sections, each only when there are several.
std::string TargetTables(const LoadOptions& options, const LoadCounters& t) {
  std::string out;
  if (options.api_keys.size() > 1) {
    absl::StrAppend(&out, "\n", TargetTable("TENANT", TenantLabels(options), t.by_tenant));
  }
  if (options.routes.size() > 1) {
    absl::StrAppend(&out, "\n", TargetTable("ROUTE", options.routes, t.by_route));
  }
  return out;
}

// The CSV's tenant and route columns: a prefix ("tenant:key-1") and its counts a row.
struct CsvTarget {
  std::string prefix;
  const std::vector<TargetCounts>* (*pick)(const LoadCounters&);
  size_t index;
};

std::vector<CsvTarget> CsvTargets(const LoadOptions& options) {
  std::vector<CsvTarget> targets;
  const std::vector<std::string> labels = TenantLabels(options);
  for (size_t i = 0; labels.size() > 1 && i < labels.size(); ++i) {
    targets.push_back({absl::StrCat("tenant:", labels[i]),
                       [](const LoadCounters& c) { return &c.by_tenant; }, i});
  }
  for (size_t i = 0; options.routes.size() > 1 && i < options.routes.size(); ++i) {
    targets.push_back({absl::StrCat("route:", options.routes[i]),
                       [](const LoadCounters& c) { return &c.by_route; }, i});
  }
  return targets;
}

std::string CsvCell(const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) {
    return cell;
  }
  std::string quoted = "\"";
  for (const char c : cell) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

}  // namespace

std::string FormatNumber(double value) {
  if (!std::isfinite(value)) {
    return "0";  // never produced by the stats; kept out of JSON, which has no NaN
  }
  std::string text = absl::StrFormat("%.3f", value);
  while (text.back() == '0') text.pop_back();  // "%.3f" always has a '.' to stop at
  if (text.back() == '.') text.pop_back();
  return text == "-0" ? "0" : text;
}

std::optional<double> Mean(int64_t total, int64_t n) {
  if (n == 0) return std::nullopt;
  return static_cast<double>(total) / static_cast<double>(n);
}

std::vector<std::string> TenantLabels(const LoadOptions& options) {
  std::vector<std::string> labels;
  for (const LabelledKey& key : options.api_keys) {
    labels.push_back(key.label);
  }
  return labels;
}

TargetCounts CountsAt(const std::vector<TargetCounts>& counts, size_t i) {
  return i < counts.size() ? counts[i] : TargetCounts{};
}

std::string TargetsText(const LoadOptions& options) {
  std::string text = absl::StrCat(options.routes.size() > 1 ? "routes " : "route ",
                                  absl::StrJoin(options.routes, ", "));
  if (options.api_keys.size() > 1) {
    absl::StrAppend(&text, " keys ", absl::StrJoin(TenantLabels(options), ", "));
  }
  return text;
}

std::string RenderLoadTable(const LoadOptions& options, const LoadStats& stats) {
  const LoadCounters& t = stats.total();
  const double elapsed = std::chrono::duration<double>(stats.elapsed()).count();
  const std::string header =
      absl::StrCat("load ", options.target, " ", TargetsText(options), ": ", RateText(options.rate),
                   " for ", FormatNumber(std::chrono::duration<double>(options.duration).count()),
                   " s, prompt ", TokenRangeText(options.prompt_tokens), " tokens, completion ",
                   TokenRangeText(options.completion_tokens), " tokens, stream share ",
                   FormatNumber(options.stream_share), ", concurrency ", options.concurrency,
                   ", over ", stats.protocol(), "\nran ", FormatNumber(elapsed), " s\n\n");
  const std::string counts =
      AlignedTable({{"SENT", "OK", "429", "OTHER", "STREAMED", "DELAYED", "DELAYED_MAX_MS"},
                    {absl::StrCat(t.sent), absl::StrCat(t.ok), absl::StrCat(t.throttled),
                     absl::StrCat(t.errors), absl::StrCat(t.streamed), absl::StrCat(t.delayed),
                     FormatNumber(static_cast<double>(t.delayed_max.count()) / 1000)}});
  return absl::StrCat(header, counts, "\n", LatencyTable(t), "\n", Summary(t, elapsed),
                      TargetTables(options, t), "\n", MinuteTable(stats));
}

std::string RenderLoadCsv(const LoadOptions& options, const LoadStats& stats) {
  const std::vector<std::string> backends = stats.BackendNames();
  const std::vector<CsvTarget> targets = CsvTargets(options);
  Row header = {"minute", "seconds", "sent", "ok", "throttled", "errors", "streamed", "delayed"};
  for (const char* h : {"ttft", "itl", "e2e"}) {
    for (const char* p : {"p50", "p90", "p99"}) {
      header.push_back(absl::StrCat(h, "_", p, "_ms"));
    }
  }
  for (const char* h : {"tokens_per_second", "prompt_tokens", "completion_tokens",
                        "retry_after_count", "retry_after_total_ms", "retry_after_max_ms"}) {
    header.push_back(h);
  }
  for (const CsvTarget& target : targets) {
    for (const char* field : {"sent", "ok", "throttled", "errors"}) {
      header.push_back(absl::StrCat(target.prefix, ":", field));
    }
  }
  for (const std::string& backend : backends) {
    header.push_back(CsvCell(absl::StrCat("backend:", backend)));
  }
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (size_t i = 0; i < stats.minutes().size(); ++i) {
    const LoadCounters& m = *stats.minutes()[i];
    const double seconds = stats.MinuteSeconds(static_cast<int64_t>(i));
    Row row = {absl::StrCat(i),          FormatNumber(seconds),     absl::StrCat(m.sent),
               absl::StrCat(m.ok),       absl::StrCat(m.throttled), absl::StrCat(m.errors),
               absl::StrCat(m.streamed), absl::StrCat(m.delayed)};
    for (const LatencyHistogram* h : {&m.ttft, &m.itl, &m.e2e}) {
      for (const double p : {50.0, 90.0, 99.0}) {
        row.push_back(Cell(h->PercentileMs(p)));
      }
    }
    row.push_back(FormatNumber(TokensPerSecond(m.completion_tokens, seconds)));
    for (const int64_t n : {m.prompt_tokens, m.completion_tokens, m.retry_after_count,
                            m.retry_after_total_ms, m.retry_after_max_ms}) {
      row.push_back(absl::StrCat(n));
    }
    for (const CsvTarget& target : targets) {
      const TargetCounts c = CountsAt(*target.pick(m), target.index);
      for (const int64_t n : {c.sent, c.ok, c.throttled, c.errors}) {
        row.push_back(absl::StrCat(n));
      }
    }
    for (const std::string& backend : backends) {
      const auto it = m.by_backend.find(backend);
      row.push_back(absl::StrCat(it == m.by_backend.end() ? 0 : it->second));
    }
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
  }
  return out;
}

}  // namespace spillway::load
