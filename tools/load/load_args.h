// `spillwayctl load`'s command line: the traffic shape and where it goes, parsed and checked
// before anything is sent. Errors name the flag and its value and end in the usage line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/routing/routing_snapshot.h"
#include "tools/load/rate_schedule.h"
#include "tools/load/rate_shape.h"
#include "tools/load/token_sizes.h"

namespace spillway::load {

// The usage line, as the errors end in it and `spillwayctl help load` prints it.
extern const char kLoadUsage[];

enum class LoadOutput { kTable, kJson, kCsv };

// An API key and the label that stands for it in reports and errors.
struct LabelledKey {
  std::string label;  // LABEL=KEY, or key-1, key-2, ... by position
  std::string key;    // never printed
};

struct LoadOptions {
  std::string target;  // as given, e.g. http://127.0.0.1:8080
  UpstreamAddress address;
  // Request i goes to combination c = i mod (keys × routes): key c / routes, route c mod routes.
  std::vector<LabelledKey> api_keys;
  std::vector<std::string> routes;
  RateShape rate;
  RateSchedule schedule;  // from `rate` and `duration`, once all flags are parsed
  std::chrono::nanoseconds duration{0};
  TokenRange prompt_tokens = TokenRange::Fixed(100);
  TokenRange completion_tokens = TokenRange::Fixed(100);
  double stream_share = 0;
  int64_t concurrency = 64;
  LoadOutput output = LoadOutput::kTable;
  std::string tls_ca_file;  // empty: the system's roots
  std::string chart_file;   // --chart: an SVG written after the run; empty: none
  // --http2: requests as streams of shared HTTP/2 connections (h2c with prior knowledge for
  // http://, ALPN h2 for https://, HTTP/1.1 when the target's ALPN chooses it).
  bool http2 = false;
  // The deadline of one whole request, connect to last byte; every socket operation of the
  // request is bounded by it (the connect and TLS handshake also by kConnectTimeout).
  std::chrono::nanoseconds timeout = std::chrono::minutes(5);
};

// Bounds that keep a run's memory and the scheduler's arithmetic finite.
inline constexpr std::chrono::hours kMaxDuration{24};
inline constexpr int64_t kMaxPromptTokens = 1'000'000;  // a 4 MB prompt
inline constexpr int64_t kMaxCompletionTokens = 1'000'000;
inline constexpr int64_t kMaxConcurrency = 100'000;
inline constexpr size_t kMaxKeys = 64;  // --api-key and --route, each
inline constexpr size_t kMaxRoutes = 64;
inline constexpr std::chrono::seconds kConnectTimeout{10};

// Parses the arguments after the word "load". InvalidArgument with a one-line message ending
// in "(usage: spillwayctl load ...)"; no API key is ever part of it (only its label).
absl::StatusOr<LoadOptions> ParseLoadArgs(const std::vector<std::string>& args);

}  // namespace spillway::load
