// The report of a run in its three forms: a table for people, JSON (the whole run and its
// minutes) and CSV (one row a minute) for scripts and plots. Pure functions of the stats.
#pragma once

#include <optional>
#include <string>

#include "tools/load/load_args.h"
#include "tools/load/load_stats.h"

namespace spillway::load {

std::string RenderLoadTable(const LoadOptions& options, const LoadStats& stats);
std::string RenderLoadJson(const LoadOptions& options, const LoadStats& stats);
// Header: minute, seconds, sent, ok, throttled, errors, streamed, delayed, ttft/itl/e2e
// p50/p90/p99 (ms), tokens_per_second, prompt_tokens, completion_tokens, retry_after_count,
// retry_after_total_ms, retry_after_max_ms, then one "backend:NAME" column per backend seen.
std::string RenderLoadCsv(const LoadStats& stats);

// A number as the reports print it: at most 3 decimals, no trailing zeros ("12.5", "60").
std::string FormatNumber(double value);
// The mean of `total` over `n`, or nullopt for n = 0.
std::optional<double> Mean(int64_t total, int64_t n);

}  // namespace spillway::load
