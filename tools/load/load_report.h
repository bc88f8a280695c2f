// The report of a run in its three forms: a table for people, JSON (the whole run and its
// minutes) and CSV (one row a minute) for scripts and plots. Pure functions of the stats.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tools/load/load_args.h"
#include "tools/load/load_stats.h"

namespace spillway::load {

std::string RenderLoadTable(const LoadOptions& options, const LoadStats& stats);
std::string RenderLoadJson(const LoadOptions& options, const LoadStats& stats);
// Header: minute, seconds, sent, ok, throttled, errors, streamed, delayed, ttft/itl/e2e
// p50/p90/p99 (ms), tokens_per_second, prompt_tokens, completion_tokens, retry_after_count,
// retry_after_total_ms, retry_after_max_ms; with several keys "tenant:LABEL:sent", ":ok",
// ":throttled" and ":errors" columns for each, with several routes "route:NAME:..." alike;
// then one "backend:NAME" column per backend seen.
std::string RenderLoadCsv(const LoadOptions& options, const LoadStats& stats);

// The labels of the keys, in order: what by_tenant names.
std::vector<std::string> TenantLabels(const LoadOptions& options);
// The counts of index `i` of `counts`, zero when nothing was sent there.
TargetCounts CountsAt(const std::vector<TargetCounts>& counts, size_t i);
// How the report names where requests went: "route gpt-4o" or "routes a, b", then
// "keys k1, k2" when there are several.
std::string TargetsText(const LoadOptions& options);

// A number as the reports print it: at most 3 decimals, no trailing zeros ("12.5", "60").
std::string FormatNumber(double value);
// The mean of `total` over `n`, or nullopt for n = 0.
std::optional<double> Mean(int64_t total, int64_t n);

}  // namespace spillway::load
