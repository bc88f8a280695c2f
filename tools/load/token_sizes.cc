// See token_sizes.h.
#include "tools/load/token_sizes.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tools/load/number_file.h"

namespace spillway::load {

double TokenRange::mean() const {
  if (samples != nullptr && !samples->empty()) {
    const double sum = std::accumulate(samples->begin(), samples->end(), 0.0);
    return sum / static_cast<double>(samples->size());
  }
  return (static_cast<double>(min) + static_cast<double>(max)) / 2;
}

absl::StatusOr<TokenRange> ParseTokenRange(absl::string_view text, int64_t limit) {
  const std::string why =
      absl::StrCat("must be N or MIN-MAX (or @FILE), whole numbers from 1 to ", limit);
  TokenRange range;
  const size_t dash = text.find('-');
  const absl::string_view low = text.substr(0, dash);
  const absl::string_view high = dash == absl::string_view::npos ? low : text.substr(dash + 1);
  if (!absl::SimpleAtoi(low, &range.min) || !absl::SimpleAtoi(high, &range.max) || range.min < 1 ||
      range.max > limit || low.empty() || low[0] == '+' || high.empty() || high[0] == '+') {
    return absl::InvalidArgumentError(why);
  }
  if (range.min > range.max) {
    return absl::InvalidArgumentError("MIN must not be above MAX");
  }
  return range;
}

absl::StatusOr<TokenRange> ParseTokenSizes(absl::string_view text, int64_t limit,
                                           absl::string_view column) {
  if (!absl::ConsumePrefix(&text, "@")) {
    return ParseTokenRange(text, limit);
  }
  TokenRange range;
  range.file = std::string(text);
  absl::StatusOr<std::vector<int64_t>> sizes =
      ReadNumberColumn(range.file, {.names = {std::string(column)},
                                    .min = 1,
                                    .max = limit,
                                    .max_values = kMaxSizeSamples,
                                    .unit = "sizes"});
  if (!sizes.ok()) {
    return sizes.status();
  }
  // Within 1..limit (at most a million): each fits in 32 bits, half the memory.
  auto samples = std::make_shared<std::vector<int32_t>>(sizes->begin(), sizes->end());
  const auto [least, greatest] = std::minmax_element(samples->begin(), samples->end());
  range.min = *least;
  range.max = *greatest;
  range.samples = std::move(samples);
  return range;
}

std::string TokenRangeText(const TokenRange& range) {
  if (range.samples != nullptr) return absl::StrCat("@", range.file);
  return range.fixed() ? absl::StrCat(range.min) : absl::StrCat(range.min, "-", range.max);
}

SizeDraw::SizeDraw(const TokenRange& range) : range_(range) {
  if (range.samples != nullptr) {
    deck_ = *range.samples;
  }
}

int64_t SizeDraw::Next(std::mt19937_64& random) {
  if (!deck_.empty()) {
    if (dealt_ == deck_.size()) {
      dealt_ = 0;  // a new pass: the whole deck is to deal again
    }
    // One step of a Fisher-Yates shuffle: any of the cards not yet dealt this pass.
    const size_t pick = std::uniform_int_distribution<size_t>(dealt_, deck_.size() - 1)(random);
    std::swap(deck_[dealt_], deck_[pick]);
    return deck_[dealt_++];
  }
  if (range_.fixed()) {
    return range_.min;
  }
  return std::uniform_int_distribution<int64_t>(range_.min, range_.max)(random);
}

}  // namespace spillway::load
