// Process logs written with --log-format json, read back by integration tests: every line
// parsed (those that do not parse are kept, to fail the test with), events found by name.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace spillway::test {

struct JsonLog {
  std::vector<boost::json::object> lines;  // in order
  std::vector<std::string> unparsed;       // lines that are not one JSON object each
};

// Splits `output` (a ChildProcess's stdout and stderr) into lines and parses each one.
JsonLog ParseJsonLog(absl::string_view output);

// Whether `line` has the members every process log line has: ts (RFC 3339, UTC, ms), level,
// program (== `program`) and msg; "" when it does, else what is wrong.
std::string ProcessLineProblem(const boost::json::object& line, absl::string_view program);

// The lines whose "event" is `event` and which `match` accepts.
std::vector<boost::json::object> Events(
    const JsonLog& log, absl::string_view event,
    absl::FunctionRef<bool(const boost::json::object&)> match = [](const auto&) { return true; });

// A line's member as text ("" when missing or not a string) or as a number (-1 when missing or
// not an integer).
std::string StringField(const boost::json::object& line, absl::string_view key);
int64_t IntField(const boost::json::object& line, absl::string_view key);

}  // namespace spillway::test
