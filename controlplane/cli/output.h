// The output formats of spillwayctl: aligned text tables for people, CSV and protobuf JSON for
// scripts. Pure functions returning strings, so every format is unit-tested without a server.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway::cli {

enum class OutputFormat { kTable, kJson, kYaml, kCsv };

// "table", "json", "yaml" or "csv"; anything else is InvalidArgument listing the choices.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);
absl::string_view OutputFormatName(OutputFormat format);

enum class Align { kLeft, kRight };

struct Table {
  std::vector<std::string> headers;
  std::vector<Align> align;  // per column; missing entries mean kLeft
  std::vector<std::vector<std::string>> rows;

  void AddRow(std::vector<std::string> row) { rows.push_back(std::move(row)); }
};

// Columns padded to their widest cell and separated by three spaces, as kubectl prints them;
// no trailing spaces, one '\n' per line. Empty cells print as "-" so columns stay readable.
std::string RenderTable(const Table& table);

// RFC 4180: a header row of the lower-cased headers, then the rows; cells holding a comma,
// a quote, CR or LF are quoted with inner quotes doubled. Lines end in "\n".
std::string RenderCsv(const Table& table);

// Protobuf's canonical JSON with the .proto field names (the same keys as the YAML), indented,
// ending in a newline. `all_fields` also prints zero counters, which scripts prefer to absent
// keys.
absl::StatusOr<std::string> RenderJson(const google::protobuf::Message& message,
                                       bool all_fields = false);

}  // namespace spillway::cli
