// A request's size in tokens (--prompt-tokens, --completion-tokens): fixed, drawn uniformly
// from a range, or drawn from sizes recorded in a file (@FILE); its mean, which --tpm divides
// by; and the seeded draw that makes two runs of one shape send the same sizes.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway::load {

struct TokenRange {
  int64_t min = 0;  // with `samples`: the least and greatest of them
  int64_t max = 0;
  std::string file;                                     // @FILE: the file as given
  std::shared_ptr<const std::vector<int32_t>> samples;  // @FILE: its sizes, in file order

  static TokenRange Between(int64_t min, int64_t max) {
    TokenRange range;
    range.min = min;
    range.max = max;
    return range;
  }
  static TokenRange Fixed(int64_t tokens) { return Between(tokens, tokens); }
  bool fixed() const { return samples == nullptr && min == max; }
  // What a request asks for on average: N, (MIN + MAX) / 2, or the file's mean.
  double mean() const;
};

// At most this many sizes are read from one file (4 MB of them).
inline constexpr size_t kMaxSizeSamples = 1'000'000;

// "N" or "MIN-MAX", each 1..`limit`, MIN <= MAX.
absl::StatusOr<TokenRange> ParseTokenRange(absl::string_view text, int64_t limit);
// "N", "MIN-MAX" or "@FILE": one size a line, or a CSV with a column named `column`
// (prompt_tokens, completion_tokens), each 1..`limit`; errors name the file and line.
absl::StatusOr<TokenRange> ParseTokenSizes(absl::string_view text, int64_t limit,
                                           absl::string_view column);
// "200", "100-400" or "@sizes.csv", as given.
std::string TokenRangeText(const TokenRange& range);

// Draws one size a request. A file's sizes are dealt as from a deck shuffled with the seeded
// generator: every size once in each pass through the file, in a new order each pass. Each draw
// is uniform over the file, and any whole number of passes has exactly the file's mean.
class SizeDraw {
 public:
  explicit SizeDraw(const TokenRange& range);
  int64_t Next(std::mt19937_64& random);

 private:
  const TokenRange& range_;
  std::vector<int32_t> deck_;  // @FILE: [0, dealt_) dealt this pass, the rest still to deal
  size_t dealt_ = 0;
};

}  // namespace spillway::load
