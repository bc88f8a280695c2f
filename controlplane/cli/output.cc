// See output.h.
#include "controlplane/cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace spillway::cli {
namespace {

constexpr absl::string_view kColumnGap = "   ";

std::string CsvCell(absl::string_view cell) {
  if (cell.find_first_of(",\"\r\n") == absl::string_view::npos) {
    return std::string(cell);
  }
  return absl::StrCat("\"", absl::StrReplaceAll(cell, {{"\"", "\"\""}}), "\"");
}

void AppendCsvLine(const std::vector<std::string>& cells, std::string& out) {
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += CsvCell(cells[i]);
  }
  out += '\n';
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "table") {
    return OutputFormat::kTable;
  }
  if (lower == "json") {
    return OutputFormat::kJson;
  }
  if (lower == "yaml") {
    return OutputFormat::kYaml;
  }
  if (lower == "csv") {
    return OutputFormat::kCsv;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output format '", text, "' (choose table, json, yaml or csv)"));
}

absl::string_view OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable:
      return "table";
    case OutputFormat::kJson:
      return "json";
    case OutputFormat::kYaml:
      return "yaml";
    case OutputFormat::kCsv:
      return "csv";
  }
  return "table";
}

std::string RenderTable(const Table& table) {
  const size_t columns = table.headers.size();
  auto cell = [](const std::vector<std::string>& row, size_t i) -> absl::string_view {
    if (i >= row.size() || row[i].empty()) {
      return "-";
    }
    return row[i];
  };
  std::vector<size_t> widths(columns, 0);
  for (size_t i = 0; i < columns; ++i) {
    widths[i] = table.headers[i].size();
    for (const std::vector<std::string>& row : table.rows) {
      widths[i] = std::max(widths[i], cell(row, i).size());
    }
  }
  std::string out;
  auto append_line = [&](auto cell_at) {
    std::string line;
    for (size_t i = 0; i < columns; ++i) {
      const absl::string_view text = cell_at(i);
      const std::string padding(widths[i] - text.size(), ' ');
      const bool right = i < table.align.size() && table.align[i] == Align::kRight;
      if (i > 0) {
        absl::StrAppend(&line, kColumnGap);
      }
      absl::StrAppend(&line, right ? padding : "", text, right ? "" : padding);
    }
    // The last column's padding would only trail.
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  };
  append_line([&](size_t i) -> absl::string_view { return table.headers[i]; });
  for (const std::vector<std::string>& row : table.rows) {
    append_line([&](size_t i) { return cell(row, i); });
  }
  return out;
}

std::string RenderCsv(const Table& table) {
  std::string out;
  std::vector<std::string> headers;
  for (const std::string& header : table.headers) {
    headers.push_back(absl::AsciiStrToLower(header));
  }
  AppendCsvLine(headers, out);
  for (const std::vector<std::string>& row : table.rows) {
    std::vector<std::string> cells = row;
    cells.resize(table.headers.size());
    AppendCsvLine(cells, out);
  }
  return out;
}

absl::StatusOr<std::string> RenderJson(const google::protobuf::Message& message, bool all_fields) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = all_fields;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  if (!absl::EndsWith(json, "\n")) {
    json += '\n';
  }
  return json;
}

}  // namespace spillway::cli
