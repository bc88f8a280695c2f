// Whole numbers read from a file, one a line: a plain list, or one column of a CSV file named
// by its header. The replayed profiles (--profile) and recorded sizes (--prompt-tokens @FILE)
// are read this way; errors name the file, the line and the value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway::load {

struct NumberColumn {
  // The CSV column to read: the first of these names the header has (case-insensitive).
  std::vector<std::string> names;
  int64_t min = 0;  // each value's bounds
  int64_t max = 0;
  size_t max_values = 0;        // a longer file is refused
  std::string unit = "values";  // what the too-long error counts: "values", "minutes"
};

// A line longer than this is refused (the file is read a line at a time).
inline constexpr size_t kMaxNumberLine = 64 * 1024;

// Reads `path`. Blank lines and lines starting with '#' are skipped. When the first other line
// is a whole number the file is a plain list of them; otherwise that line is a CSV header and
// the values are the column `column.names` picks. InvalidArgument, "FILE:LINE: 'VALUE' ..." or
// "FILE: ...", when the file cannot be read, a value is not a whole number within the bounds,
// the header has none of the names, the file holds more than `max_values` or no value at all.
absl::StatusOr<std::vector<int64_t>> ReadNumberColumn(const std::string& path,
                                                      const NumberColumn& column);

// The cells of one CSV line: commas split them, double quotes protect commas and quotes ("").
std::vector<std::string> SplitCsvLine(absl::string_view line);

}  // namespace spillway::load
