// See number_file.h.
#include "tools/load/number_file.h"

#include <cstring>
#include <fstream>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace spillway::load {
namespace {

// A value as an error quotes it: at most 40 characters of it.
std::string Quoted(absl::string_view value) {
  return absl::StrCat("'", value.substr(0, 40), value.size() > 40 ? "...'" : "'");
}

// Parses one file's lines after the first data line decided its form.
class ColumnReader {
 public:
  ColumnReader(const std::string& path, const NumberColumn& column)
      : path_(path), column_(column) {}

  // One line that is neither blank nor a comment.
  absl::Status Take(absl::string_view line, int64_t line_number) {
    if (!cell_.has_value()) {
      int64_t value = 0;
      if (!absl::SimpleAtoi(line, &value)) {
        return Header(line, line_number);
      }
      cell_ = -1;  // a plain list: the whole line
    }
    absl::string_view text = line;
    std::vector<std::string> cells;
    if (*cell_ >= 0) {
      cells = SplitCsvLine(line);
      if (static_cast<size_t>(*cell_) >= cells.size()) {
        return Error(line_number, absl::StrCat("has no ", column_name_, " value"));
      }
      text = absl::StripAsciiWhitespace(cells[static_cast<size_t>(*cell_)]);
    }
    int64_t value = 0;
    if (!absl::SimpleAtoi(text, &value) || value < column_.min || value > column_.max) {
      return Error(line_number, absl::StrCat(Quoted(text), " must be a whole number from ",
                                             column_.min, " to ", column_.max));
    }
    if (values_.size() >= column_.max_values) {
      return Error(line_number, absl::StrCat("more than ", column_.max_values, " ", column_.unit));
    }
    values_.push_back(value);
    return absl::OkStatus();
  }

  absl::Status Error(int64_t line_number, absl::string_view why) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", line_number, ": ", why));
  }

  std::vector<int64_t>& values() { return values_; }

 private:
  absl::Status Header(absl::string_view line, int64_t line_number) {
    const std::vector<std::string> cells = SplitCsvLine(line);
    for (const std::string& name : column_.names) {
      for (size_t i = 0; i < cells.size(); ++i) {
        if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(cells[i]), name)) {
          cell_ = static_cast<int>(i);
          column_name_ = name;
          return absl::OkStatus();
        }
      }
    }
    std::string names = column_.names.back();
    if (column_.names.size() > 1) {
      const std::vector<std::string> first(column_.names.begin(), column_.names.end() - 1);
      names = absl::StrCat(absl::StrJoin(first, ", "), " or ", names);
    }
    return Error(line_number, absl::StrCat(Quoted(line),
                                           " is neither a whole number nor a CSV header with a "
                                           "column named ",
                                           names));
  }

  const std::string& path_;
  const NumberColumn& column_;
  std::optional<int> cell_;  // unset until the first data line; -1: a plain list
  std::string column_name_;
  std::vector<int64_t> values_;
};

}  // namespace

std::vector<std::string> SplitCsvLine(absl::string_view line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

absl::StatusOr<std::vector<int64_t>> ReadNumberColumn(const std::string& path,
                                                      const NumberColumn& column) {
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the file"));
  }
  ColumnReader reader(path, column);
  std::vector<char> buffer(kMaxNumberLine + 1);
  int64_t line_number = 0;
  while (in.getline(buffer.data(), static_cast<std::streamsize>(buffer.size()))) {
    ++line_number;
    const absl::string_view line =
        absl::StripAsciiWhitespace(absl::string_view(buffer.data(), std::strlen(buffer.data())));
    if (line.empty() || line[0] == '#') continue;
    if (absl::Status taken = reader.Take(line, line_number); !taken.ok()) {
      return taken;
    }
  }
  if (!in.eof()) {  // a line filled the buffer, or the read failed (a directory, say)
    return in.bad() || std::strlen(buffer.data()) < kMaxNumberLine
               ? absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the file"))
               : reader.Error(line_number + 1,
                              absl::StrCat("a line longer than ", kMaxNumberLine, " bytes"));
  }
  if (reader.values().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no value"));
  }
  return std::move(reader.values());
}

}  // namespace spillway::load
