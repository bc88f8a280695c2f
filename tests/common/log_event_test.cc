// Process log lines in both formats: json lines that Boost.JSON parses back to what was logged
// (quotes, newlines, control characters, bytes that are not UTF-8), events' fields, and text
// lines that read as before.
#include "common/log_event.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

namespace spillway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Installs a default logger writing into a string, in `format`; restores text mode after.
class ProcessLog : public ::testing::Test {
 protected:
  void Use(LogFormat format) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("", sink);
    logger->set_formatter(std::make_unique<spdlog::pattern_formatter>());
    spdlog::set_default_logger(logger);
    SetUpProcessLog("log-test", format);
  }
  // The logger writes into out_, which goes with the test.
  void TearDown() override {
    SetUpProcessLog("log-test", LogFormat::kText);
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }

  std::vector<std::string> Lines() const {
    return absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  }

  // Every line parsed; a line that does not parse as one object fails the test.
  std::vector<boost::json::object> JsonLines() const {
    std::vector<boost::json::object> objects;
    for (const std::string& line : Lines()) {
      boost::system::error_code error;
      boost::json::value value = boost::json::parse(line, error);
      EXPECT_FALSE(error) << "not JSON: " << line;
      EXPECT_TRUE(value.is_object()) << line;
      if (!error && value.is_object()) {
        objects.push_back(value.as_object());
      }
    }
    return objects;
  }

  std::ostringstream out_;
};

TEST(LogFormat, ParsesTextAndJsonOnly) {
  EXPECT_EQ(ParseLogFormat("text").value(), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json").value(), LogFormat::kJson);
  for (const char* bad : {"", "JSON", "yaml", "json "}) {
    absl::StatusOr<LogFormat> parsed = ParseLogFormat(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(parsed.status().message(), HasSubstr("--log-format must be 'text' or 'json'"));
  }
}

TEST_F(ProcessLog, JsonLineHasTimestampLevelProgramAndMessage) {
  Use(LogFormat::kJson);
  spdlog::warn("backend {} is unusable: {}", "a", "no key");
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 1u);
  const boost::json::object& line = lines[0];
  EXPECT_TRUE(std::regex_match(std::string(line.at("ts").as_string()),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << line.at("ts");
  EXPECT_EQ(line.at("level").as_string(), "warning");
  EXPECT_EQ(line.at("program").as_string(), "log-test");
  EXPECT_EQ(line.at("msg").as_string(), "backend a is unusable: no key");
  EXPECT_EQ(line.if_contains("event"), nullptr) << "a plain line is no event";
  // ts, level, program, msg: in that order, for people reading the raw lines.
  std::vector<std::string> keys;
  for (const auto& member : line) {
    keys.emplace_back(member.key());
  }
  EXPECT_THAT(keys, ElementsAre("ts", "level", "program", "msg"));
}

TEST_F(ProcessLog, JsonEscapesWhatWouldBreakALine) {
  Use(LogFormat::kJson);
  const std::string hostile = "say \"hi\"\nnext line\r\ttab \\ back\x01\x1f end";
  spdlog::error("{}", hostile);
  LogEvent(spdlog::level::warn, "circuit_changed", {{"reason", hostile}}, hostile);
  const std::vector<std::string> raw = Lines();
  ASSERT_EQ(raw.size(), 2u) << "a newline in a message must not split its line";
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("msg").as_string(), hostile);
  EXPECT_EQ(lines[1].at("msg").as_string(), hostile);
  EXPECT_EQ(lines[1].at("reason").as_string(), hostile);
}

TEST_F(ProcessLog, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  Use(LogFormat::kJson);
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate; then valid
  // two-, three- and four-byte characters, kept as they are.
  LogEvent(
      spdlog::level::info, "table_refused",
      {{"reason", "a\x80z \xE2\x82 \xC0\xAF \xED\xA0\x80 \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"}},
      "bad \xff byte");
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("msg").as_string(), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(lines[0].at("reason").as_string(),
            "a\xEF\xBF\xBDz \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD "
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
}

TEST_F(ProcessLog, JsonEventCarriesItsNameAndTypedFields) {
  Use(LogFormat::kJson);
  const std::string backend = "ptu/gpt-4o-ptu";
  LogEvent(spdlog::level::warn, "circuit_changed",
           {{"backend", backend},
            {"from", "closed"},
            {"to", "open"},
            {"open_ms", std::chrono::milliseconds(1500).count()},
            {"failures", 3},
            {"version", std::numeric_limits<uint64_t>::max()},
            {"delta", int64_t{-7}},
            {"ratio", 0.5},
            {"reconnect", true}},
           "circuit of backend ptu/gpt-4o-ptu opened");
  spdlog::info("after");
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 2u);
  const boost::json::object& event = lines[0];
  EXPECT_EQ(event.at("event").as_string(), "circuit_changed");
  EXPECT_EQ(event.at("msg").as_string(), "circuit of backend ptu/gpt-4o-ptu opened");
  EXPECT_EQ(event.at("level").as_string(), "warning");
  EXPECT_EQ(event.at("backend").as_string(), backend);
  EXPECT_EQ(event.at("from").as_string(), "closed");
  EXPECT_EQ(event.at("to").as_string(), "open");
  EXPECT_EQ(event.at("open_ms").as_int64(), 1500);
  EXPECT_EQ(event.at("failures").as_int64(), 3);
  EXPECT_EQ(event.at("version").as_uint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(event.at("delta").as_int64(), -7);
  EXPECT_EQ(event.at("ratio").as_double(), 0.5);
  EXPECT_EQ(event.at("reconnect").as_bool(), true);
  EXPECT_EQ(lines[1].if_contains("event"), nullptr) << "the event's fields leaked to the next line";
  EXPECT_EQ(lines[1].if_contains("backend"), nullptr);
}

TEST_F(ProcessLog, AFieldCannotReplaceTheLinesOwnMembers) {
  Use(LogFormat::kJson);
  LogEvent(spdlog::level::info, "drain_started",
           {{"msg", "field"}, {"level", "field"}, {"ts", 1}, {"event", "x"}, {"program", "p"}},
           "the message");
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("msg").as_string(), "the message");
  EXPECT_EQ(lines[0].at("level").as_string(), "info");
  EXPECT_EQ(lines[0].at("event").as_string(), "drain_started");
  EXPECT_EQ(lines[0].at("program").as_string(), "log-test");
  EXPECT_EQ(lines[0].at("msg_").as_string(), "field");
  EXPECT_EQ(lines[0].at("ts_").as_int64(), 1);
}

TEST_F(ProcessLog, AnEventWithoutMessageGetsItsTextAsMsg) {
  Use(LogFormat::kJson);
  LogEvent(spdlog::level::info, "region_drained", {{"region", "eastus2"}, {"by", "ops team"}});
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("msg").as_string(), "region_drained: region=eastus2 by=\"ops team\"");
  EXPECT_EQ(lines[0].at("region").as_string(), "eastus2");
}

TEST_F(ProcessLog, TextModeWritesTheMessageAsSpdlogAlwaysDid) {
  Use(LogFormat::kText);
  spdlog::info("plain {}", 1);
  LogEvent(spdlog::level::info, "table_applied", {{"version", 3}},
           "applied routing table version 3 (2 backends, 1 routes)");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  // spdlog's default pattern: "[2026-12-05 10:11:12.345] [info] <message>".
  const std::regex pattern(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[info\] (.*))");
  std::smatch match;
  ASSERT_TRUE(std::regex_match(lines[0], match, pattern)) << lines[0];
  EXPECT_EQ(match[1], "plain 1");
  ASSERT_TRUE(std::regex_match(lines[1], match, pattern)) << lines[1];
  EXPECT_EQ(match[1], "applied routing table version 3 (2 backends, 1 routes)");
  EXPECT_THAT(out_.str(), Not(HasSubstr("{")));
}

TEST_F(ProcessLog, TextModeSpellsOutAnEventWithoutMessage) {
  Use(LogFormat::kText);
  LogEvent(spdlog::level::warn, "circuit_changed",
           {{"backend", "a/gpt-4o"},
            {"to", "open"},
            {"reason", "connect: \"refused\"\n"},
            {"open_ms", 1000},
            {"probe", false},
            {"empty", ""}});
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u) << "a newline in a value must not split the line";
  EXPECT_THAT(lines[0], HasSubstr("[warning] circuit_changed: backend=a/gpt-4o to=open "
                                  "reason=\"connect: \\\"refused\\\"\\n\" open_ms=1000 "
                                  "probe=false empty=\"\""));
}

TEST_F(ProcessLog, EventsBelowTheLoggersLevelAreNotWritten) {
  Use(LogFormat::kJson);
  spdlog::set_level(spdlog::level::warn);
  LogEvent(spdlog::level::info, "table_applied", {{"version", 1}});
  LogEvent(spdlog::level::warn, "circuit_changed", {{"backend", "a"}});
  spdlog::set_level(spdlog::level::info);
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("event").as_string(), "circuit_changed");
}

TEST_F(ProcessLog, PrintEventIsABareLineInTextAndAnEventInJson) {
  testing::internal::CaptureStdout();
  Use(LogFormat::kText);
  PrintEvent("listening", {{"port", 8080}}, "spillway-agent listening on 127.0.0.1:8080 (x)");
  EXPECT_EQ(testing::internal::GetCapturedStdout(),
            "spillway-agent listening on 127.0.0.1:8080 (x)\n");
  EXPECT_EQ(out_.str(), "");

  Use(LogFormat::kJson);
  PrintEvent("listening", {{"port", 8080}}, "spillway-agent listening on 127.0.0.1:8080 (x)");
  const std::vector<boost::json::object> lines = JsonLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("event").as_string(), "listening");
  EXPECT_EQ(lines[0].at("port").as_int64(), 8080);
  EXPECT_EQ(lines[0].at("msg").as_string(), "spillway-agent listening on 127.0.0.1:8080 (x)");
}

TEST_F(ProcessLog, FatalLineFollowsTheFormat) {
  Use(LogFormat::kText);
  EXPECT_EQ(FatalLine("spillway-cp", "--db is required"), "spillway-cp: --db is required\n");
  Use(LogFormat::kJson);
  const std::string line = FatalLine("spillway-cp", "cannot \"open\"\nit");
  ASSERT_EQ(line.back(), '\n');
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  const boost::json::object parsed = boost::json::parse(line).as_object();
  EXPECT_EQ(parsed.at("level").as_string(), "critical");
  EXPECT_EQ(parsed.at("program").as_string(), "spillway-cp");
  EXPECT_EQ(parsed.at("msg").as_string(), "cannot \"open\"\nit");
}

}  // namespace
}  // namespace spillway
