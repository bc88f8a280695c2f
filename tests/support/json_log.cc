// See json_log.h.
#include "tests/support/json_log.h"

#include <boost/json/parse.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spillway::test {
namespace {

boost::json::string_view JsonView(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace

JsonLog ParseJsonLog(absl::string_view output) {
  JsonLog log;
  for (absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    boost::system::error_code error;
    boost::json::value value = boost::json::parse(JsonView(line), error);
    if (error || !value.is_object()) {
      log.unparsed.emplace_back(line);
      continue;
    }
    log.lines.push_back(std::move(value.as_object()));
  }
  return log;
}

std::string ProcessLineProblem(const boost::json::object& line, absl::string_view program) {
  static const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  const std::string ts = StringField(line, "ts");
  if (!std::regex_match(ts, kTimestamp)) {
    return absl::StrCat("ts '", ts, "' is not RFC 3339 UTC with milliseconds");
  }
  if (StringField(line, "level").empty()) {
    return "no level";
  }
  if (StringField(line, "program") != program) {
    return absl::StrCat("program is '", StringField(line, "program"), "'");
  }
  const boost::json::value* msg = line.if_contains("msg");
  if (msg == nullptr || !msg->is_string()) {
    return "no msg";
  }
  return "";
}

std::vector<boost::json::object> Events(const JsonLog& log, absl::string_view event,
                                        absl::FunctionRef<bool(const boost::json::object&)> match) {
  std::vector<boost::json::object> found;
  for (const boost::json::object& line : log.lines) {
    if (StringField(line, "event") == event && match(line)) {
      found.push_back(line);
    }
  }
  return found;
}

std::string StringField(const boost::json::object& line, absl::string_view key) {
  const boost::json::value* value = line.if_contains(JsonView(key));
  if (value == nullptr || !value->is_string()) {
    return "";
  }
  return std::string(value->as_string());
}

int64_t IntField(const boost::json::object& line, absl::string_view key) {
  const boost::json::value* value = line.if_contains(JsonView(key));
  if (value == nullptr) {
    return -1;
  }
  if (value->is_int64()) {
    return value->as_int64();
  }
  if (value->is_uint64()) {
    return static_cast<int64_t>(value->as_uint64());
  }
  return -1;
}

}  // namespace spillway::test
