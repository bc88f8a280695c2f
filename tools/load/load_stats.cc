// See load_stats.h.
#include "tools/load/load_stats.h"

#include <algorithm>

namespace spillway::load {
namespace {

constexpr std::chrono::minutes kMinute{1};

TargetCounts& At(std::vector<TargetCounts>& counts, size_t index) {
  if (counts.size() <= index) counts.resize(index + 1);
  return counts[index];
}

void CountOutcome(TargetCounts& counts, Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      ++counts.ok;
      break;
    case Outcome::kThrottled:
      ++counts.throttled;
      break;
    case Outcome::kError:
      ++counts.errors;
      break;
  }
}

}  // namespace

double TokensPerSecond(int64_t tokens, double seconds) {
  return seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
}

LoadCounters& LoadStats::Minute(int64_t minute) {
  // Minutes come from RecordSent, bounded by the run's duration (24 h at most: 1,441 rows).
  while (static_cast<int64_t>(minutes_.size()) <= minute) {
    minutes_.push_back(std::make_unique<LoadCounters>());
  }
  return *minutes_[static_cast<size_t>(minute)];
}

int64_t LoadStats::RecordSent(std::chrono::nanoseconds offset, bool stream,
                              std::optional<Micros> late, size_t key, size_t route) {
  const int64_t minute = std::max<int64_t>(0, offset / kMinute);
  for (LoadCounters* row : {&total_, &Minute(minute)}) {
    ++row->sent;
    ++At(row->by_tenant, key).sent;
    ++At(row->by_route, route).sent;
    row->streamed += stream ? 1 : 0;
    if (late.has_value()) {
      ++row->delayed;
      row->delayed_max = std::max(row->delayed_max, *late);
    }
  }
  return minute;
}

void LoadStats::RecordTokenGap(int64_t minute, Micros gap) {
  total_.itl.Add(gap);
  Minute(minute).itl.Add(gap);
}

void LoadStats::RecordResult(int64_t minute, const RequestResult& result, size_t key,
                             size_t route) {
  RequestResult counted = result;
  if (!counted.backend.empty() && !total_.by_backend.contains(counted.backend) &&
      total_.by_backend.size() >= kMaxBackendNames) {
    counted.backend = "(other)";
  }
  AddResult(total_, counted, key, route);
  AddResult(Minute(minute), counted, key, route);
}

void LoadStats::AddResult(LoadCounters& row, const RequestResult& result, size_t key,
                          size_t route) {
  CountOutcome(At(row.by_tenant, key), result.outcome);
  CountOutcome(At(row.by_route, route), result.outcome);
  if (result.ttft.has_value()) {
    row.ttft.Add(*result.ttft);
  }
  switch (result.outcome) {
    case Outcome::kOk:
      ++row.ok;
      row.e2e.Add(result.e2e);
      if (result.prompt_tokens.has_value() || result.completion_tokens.has_value()) {
        ++row.usage_reports;
        row.prompt_tokens += result.prompt_tokens.value_or(0);
        row.completion_tokens += result.completion_tokens.value_or(0);
      }
      if (!result.backend.empty()) {
        ++row.by_backend[result.backend];
      }
      break;
    case Outcome::kThrottled:
      ++row.throttled;
      if (result.retry_after.has_value()) {
        const int64_t ms = result.retry_after->count();
        ++row.retry_after_count;
        row.retry_after_total_ms += ms;
        row.retry_after_max_ms = std::max(row.retry_after_max_ms, ms);
      }
      break;
    case Outcome::kError:
      ++row.errors;
      ++row.errors_by_kind[result.error_kind.empty() ? "other" : result.error_kind];
      break;
  }
}

double LoadStats::MinuteSeconds(int64_t i) const {
  const double elapsed = std::chrono::duration<double>(elapsed_).count();
  return std::clamp(elapsed - 60.0 * static_cast<double>(i), 0.0, 60.0);
}

std::vector<std::string> LoadStats::BackendNames() const {
  std::vector<std::string> names;
  for (const auto& [name, count] : total_.by_backend) {
    names.push_back(name);
  }
  return names;
}

}  // namespace spillway::load
