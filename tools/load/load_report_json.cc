// RenderLoadJson (load_report.h): the run as a boost::json tree, printed by hand so that
// numbers read as people and plotting tools expect ("12.5", not Boost's "1.25E1").
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/load/load_report.h"

namespace spillway::load {
namespace json = boost::json;
namespace {

json::value Maybe(std::optional<double> value) {
  return value.has_value() ? json::value(*value) : json::value(nullptr);
}

json::object Percentiles(const LatencyHistogram& h) {
  return {{"count", h.count()},
          {"p50", Maybe(h.PercentileMs(50))},
          {"p90", Maybe(h.PercentileMs(90))},
          {"p99", Maybe(h.PercentileMs(99))},
          {"max", Maybe(h.MaxMs())}};
}

json::object CountMap(const std::map<std::string, int64_t>& counts) {
  json::object out;
  for (const auto& [name, count] : counts) {
    out[name] = count;
  }
  return out;
}

// label -> {sent, ok, throttled, errors}, every label listed.
json::object TargetMap(const std::vector<std::string>& names,
                       const std::vector<TargetCounts>& counts) {
  json::object out;
  for (size_t i = 0; i < names.size(); ++i) {
    const TargetCounts c = CountsAt(counts, i);
    out[names[i]] = {
        {"sent", c.sent}, {"ok", c.ok}, {"throttled", c.throttled}, {"errors", c.errors}};
  }
  return out;
}

// The fields of the whole run and of each minute alike.
json::object Row(const LoadOptions& options, const LoadCounters& c, double seconds) {
  return {
      {"sent", c.sent},
      {"ok", c.ok},
      {"throttled", c.throttled},
      {"errors", c.errors},
      {"errors_by_kind", CountMap(c.errors_by_kind)},
      {"streamed", c.streamed},
      {"delayed", c.delayed},
      {"delayed_max_ms", static_cast<double>(c.delayed_max.count()) / 1000},
      {"ttft_ms", Percentiles(c.ttft)},
      {"itl_ms", Percentiles(c.itl)},
      {"e2e_ms", Percentiles(c.e2e)},
      {"tokens_per_second", TokensPerSecond(c.completion_tokens, seconds)},
      {"prompt_tokens",
       {{"total", c.prompt_tokens},
        {"mean", Maybe(Mean(c.prompt_tokens, c.usage_reports))},
        {"requests", c.usage_reports}}},
      {"completion_tokens",
       {{"total", c.completion_tokens},
        {"mean", Maybe(Mean(c.completion_tokens, c.usage_reports))},
        {"requests", c.usage_reports}}},
      {"retry_after",
       {{"count", c.retry_after_count},
        {"total_ms", c.retry_after_total_ms},
        {"max_ms", c.retry_after_max_ms}}},
      {"by_backend", CountMap(c.by_backend)},
      {"by_tenant", TargetMap(TenantLabels(options), c.by_tenant)},
      {"by_route", TargetMap(options.routes, c.by_route)},
  };
}

json::value Milli(int64_t milli) {
  if (milli % kMilli == 0) return json::value(milli / kMilli);
  return json::value(static_cast<double>(milli) / kMilli);
}

// How the rate was declared: constant, ramp or profile; in requests or tokens a minute.
json::object RateFields(const RateShape& rate) {
  json::object out;
  if (rate.kind == RateKind::kProfile) {
    out = {{"rate", "profile"},
           {"profile", rate.profile_file},
           {"profile_minutes", rate.profile_rpm.size()},
           {"rpm_min", Milli(rate.from_milli)},
           {"rpm_max", Milli(rate.to_milli)}};
    return out;
  }
  const bool tpm = rate.kind == RateKind::kTpm;
  out["rate"] = rate.ramp() ? "ramp" : "constant";
  if (rate.ramp()) {
    if (tpm) {
      out["tpm_from"] = rate.from;
      out["tpm_to"] = rate.to;
    }
    out["rpm_from"] = Milli(rate.from_milli);
    out["rpm_to"] = Milli(rate.to_milli);
  } else {
    if (tpm) out["tpm"] = rate.from;
    out["rpm"] = Milli(rate.from_milli);
  }
  if (tpm) out["tokens_per_request"] = rate.tokens_per_request;
  return out;
}

json::object Shape(const LoadOptions& options, const LoadStats& stats) {
  json::object shape = RateFields(options.rate);
  json::array routes(options.routes.begin(), options.routes.end());
  json::array tenants;
  for (const std::string& label : TenantLabels(options)) tenants.emplace_back(label);
  for (auto& [key, value] :
       json::object{{"requests", options.schedule.count()},
                    {"duration_s", std::chrono::duration<double>(options.duration).count()},
                    {"prompt_tokens", TokenRangeText(options.prompt_tokens)},
                    {"completion_tokens", TokenRangeText(options.completion_tokens)},
                    {"stream_share", options.stream_share},
                    {"concurrency", options.concurrency},
                    {"routes", std::move(routes)},
                    {"tenants", std::move(tenants)},
                    {"protocol", stats.protocol()}}) {
    shape[key] = std::move(value);
  }
  return shape;
}

void Print(const json::value& v, int indent, std::string& out);

void Newline(int indent, std::string& out) {
  out += '\n';
  out.append(static_cast<size_t>(indent), ' ');
}

void PrintObject(const json::object& object, int indent, std::string& out) {
  if (object.empty()) {
    out += "{}";
    return;
  }
  out += '{';
  bool first = true;
  for (const auto& [key, value] : object) {
    out += first ? "" : ",";
    first = false;
    Newline(indent + 2, out);
    out += json::serialize(json::string(key));
    out += ": ";
    Print(value, indent + 2, out);
  }
  Newline(indent, out);
  out += '}';
}

void Print(const json::value& v, int indent, std::string& out) {
  switch (v.kind()) {
    case json::kind::object:
      PrintObject(v.get_object(), indent, out);
      break;
    case json::kind::array: {
      const json::array& array = v.get_array();
      out += '[';
      for (size_t i = 0; i < array.size(); ++i) {
        out += i == 0 ? "" : ",";
        Newline(indent + 2, out);
        Print(array[i], indent + 2, out);
      }
      if (!array.empty()) Newline(indent, out);
      out += ']';
      break;
    }
    case json::kind::double_:
      out += FormatNumber(v.get_double());
      break;
    default:
      out += json::serialize(v);
      break;
  }
}

}  // namespace

std::string RenderLoadJson(const LoadOptions& options, const LoadStats& stats) {
  const double elapsed = std::chrono::duration<double>(stats.elapsed()).count();
  json::object report = {
      {"target", options.target},
      {"route", absl::StrJoin(options.routes, ",")},
      {"shape", Shape(options, stats)},
      {"elapsed_s", elapsed},
  };
  for (auto& [key, value] : Row(options, stats.total(), elapsed)) {
    report[key] = std::move(value);
  }
  json::array minutes;
  for (size_t i = 0; i < stats.minutes().size(); ++i) {
    const double seconds = stats.MinuteSeconds(static_cast<int64_t>(i));
    json::object row = {{"minute", i}, {"seconds", seconds}};
    for (auto& [key, value] : Row(options, *stats.minutes()[i], seconds)) {
      row[key] = std::move(value);
    }
    minutes.push_back(std::move(row));
  }
  report["minutes"] = std::move(minutes);
  std::string out;
  Print(report, 0, out);
  out += '\n';
  return out;
}

}  // namespace spillway::load
