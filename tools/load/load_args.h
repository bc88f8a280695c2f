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

namespace spillway::load {

// The usage line, as the errors end in it and `spillwayctl help load` prints it.
extern const char kLoadUsage[];

enum class LoadOutput { kTable, kJson, kCsv };

// A size in tokens: fixed (min == max) or drawn uniformly from [min, max].
struct TokenRange {
  int64_t min = 0;
  int64_t max = 0;
  bool fixed() const { return min == max; }
};

// "N" or "MIN-MAX", each 1..`limit`, MIN <= MAX.
absl::StatusOr<TokenRange> ParseTokenRange(absl::string_view text, int64_t limit);
// "200" or "100-400", as parsed.
std::string TokenRangeText(const TokenRange& range);

struct LoadOptions {
  std::string target;  // as given, e.g. http://127.0.0.1:8080
  UpstreamAddress address;
  std::string api_key;  // never printed
  std::string route;
  int64_t rpm = 0;
  std::chrono::nanoseconds duration{0};
  TokenRange prompt_tokens{100, 100};
  TokenRange completion_tokens{100, 100};
  double stream_share = 0;
  int64_t concurrency = 64;
  LoadOutput output = LoadOutput::kTable;
  std::string tls_ca_file;  // empty: the system's roots
  // The deadline of one whole request, connect to last byte; every socket operation of the
  // request is bounded by it (the connect and TLS handshake also by kConnectTimeout).
  std::chrono::nanoseconds timeout = std::chrono::minutes(5);
};

// Bounds that keep a run's memory and the scheduler's arithmetic finite.
inline constexpr int64_t kMaxRpm = 6'000'000;  // 100k requests a second
inline constexpr std::chrono::hours kMaxDuration{24};
inline constexpr int64_t kMaxPromptTokens = 1'000'000;  // a 4 MB prompt
inline constexpr int64_t kMaxCompletionTokens = 1'000'000;
inline constexpr int64_t kMaxConcurrency = 100'000;
inline constexpr std::chrono::seconds kConnectTimeout{10};

// Parses the arguments after the word "load". InvalidArgument with a one-line message ending
// in "(usage: spillwayctl load ...)"; the API key's value is never part of it.
absl::StatusOr<LoadOptions> ParseLoadArgs(const std::vector<std::string>& args);

}  // namespace spillway::load
