// Runs the real spillwayctl binary as a child process with stdout and stderr captured apart;
// shared by the CLI tests against a fake server and the end-to-end ones against spillway-cp.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace spillway::test {

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

struct CtlRunOptions {
  std::vector<std::string> env;  // extra NAME=value entries
  std::string stdin_path = "/dev/null";
  bool echo = true;  // copy stdout to the test log as it arrives
};

// Runs `binary` with `args`; stderr goes through `stderr_path` (a fresh file per run).
CtlResult RunCtl(const std::string& binary, const std::vector<std::string>& args,
                 const std::string& stderr_path, CtlRunOptions options = {});

// The rows of spillwayctl's CSV, header included: cells with a comma or a quote come quoted,
// with quotes doubled (RFC 4180); no cell of these tests spans lines.
std::vector<std::vector<std::string>> CsvRows(const std::string& csv);
// The same, each row after the header as a map from the header's names to its cells.
std::vector<std::map<std::string, std::string>> CsvRecords(const std::string& csv);

std::string ReadAll(const std::string& path);
void WriteTextFile(const std::string& path, const std::string& text);

}  // namespace spillway::test
