// See ctl_runner.h.
#include "tests/controlplane/cli/ctl_runner.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/support/child_process.h"

namespace spillway::test {

std::vector<std::vector<std::string>> CsvRows(const std::string& csv) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(csv, '\n', absl::SkipEmpty())) {
    std::vector<std::string>& row = rows.emplace_back(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        row.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        row.emplace_back();
      } else {
        row.back() += c;
      }
    }
  }
  return rows;
}

std::vector<std::map<std::string, std::string>> CsvRecords(const std::string& csv) {
  const std::vector<std::vector<std::string>> rows = CsvRows(csv);
  std::vector<std::map<std::string, std::string>> records;
  for (size_t i = 1; i < rows.size(); ++i) {
    std::map<std::string, std::string>& record = records.emplace_back();
    for (size_t column = 0; column < rows[0].size() && column < rows[i].size(); ++column) {
      record[rows[0][column]] = rows[i][column];
    }
  }
  return records;
}

std::string ReadAll(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

CtlResult RunCtl(const std::string& binary, const std::vector<std::string>& args,
                 const std::string& stderr_path, CtlRunOptions options) {
  // A shell redirects stderr to a file so it stays apart from stdout, which the child
  // harness captures.
  std::vector<std::string> shell_args = {
      "-c", absl::StrCat("exec \"$0\" \"$@\" <'", options.stdin_path, "' 2>'", stderr_path, "'"),
      binary};
  shell_args.insert(shell_args.end(), args.begin(), args.end());
  ChildProcessOptions child_options;
  child_options.name = "spillwayctl";
  child_options.env = std::move(options.env);
  child_options.echo = options.echo;
  CtlResult result;
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start("/bin/sh", shell_args, child_options);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) {
    return result;
  }
  absl::StatusOr<int> exit_code = (*child)->Wait(absl::Seconds(20));
  EXPECT_TRUE(exit_code.ok()) << exit_code.status();
  result.exit_code = exit_code.value_or(-1);
  result.out = (*child)->Output();
  result.err = ReadAll(stderr_path);
  return result;
}

}  // namespace spillway::test
