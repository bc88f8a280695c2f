// The access log's bounds: a field quoting client input is cut, and a thread's unflushed lines
// stop growing at the cap, the lines refused counted in a line of their own (issue 15, item 7).
#include "dataplane/usage/access_log.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

std::vector<boost::json::object> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<boost::json::object> lines;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n', absl::SkipEmpty())) {
    boost::system::error_code ec;
    boost::json::value value = boost::json::parse(std::string(line), ec);
    EXPECT_FALSE(ec) << line.substr(0, 200);
    if (!ec && value.is_object()) {
      lines.push_back(value.as_object());
    }
  }
  return lines;
}

TEST(AccessLog, LongFieldsAreCutAtACharacterBoundary) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/access.log";
  const std::string route(100000, 'r');
  std::string error;
  for (int i = 0; i < 5000; ++i) {
    error += "\xC3\xA9";  // é: two bytes, never cut in half
  }
  {
    absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.status();
    AccessRecord record;
    record.method = "POST";
    record.route = route;
    record.error = error;
    record.status = 502;
    (*log)->Write(record);
  }
  const std::vector<boost::json::object> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("route").as_string().size(), AccessLog::kMaxField);
  const auto& cut = lines[0].at("error").as_string();
  EXPECT_EQ(cut.size(), AccessLog::kMaxField);
  EXPECT_EQ(std::string(cut.data(), cut.size()), error.substr(0, AccessLog::kMaxField));
  EXPECT_EQ(lines[0].at("status").as_int64(), 502);
}

// Every field of a line, with an error text that needs JSON escapes (quotes, a backslash,
// control characters) and the pinned-object fields.
TEST(AccessLog, ALineHoldsEveryFieldAsValidJson) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/access.log";
  const std::string error = "backend \"b\" said \\ no\n\t\x01";
  {
    absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.status();
    AccessRecord record;
    record.method = "POST";
    record.route = "chat";
    record.tenant = "team-a";
    record.backend = "eastus2/ptu";
    record.region = "eastus2";
    record.error = error;
    record.status = 429;
    record.attempts = 3;
    record.latency_ms = 12.0456;
    record.stream = true;
    record.usage.prompt_tokens = 11;
    record.usage.completion_tokens = 22;
    record.usage.total_tokens = 33;
    record.usage.cached_tokens = 4;
    record.pinned_object = "resp_1";
    record.routed_by = "pin";
    (*log)->Write(record);
    record.pinned_object = "";
    record.error = "";
    record.stream = false;
    record.latency_ms = 0.5;
    (*log)->Write(record);
  }
  const std::vector<boost::json::object> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 2u);
  const boost::json::object& line = lines[0];
  auto text = [&line](const char* key) { return std::string(line.at(key).as_string()); };
  EXPECT_EQ(text("method"), "POST");
  EXPECT_EQ(text("route"), "chat");
  EXPECT_EQ(text("tenant"), "team-a");
  EXPECT_EQ(text("backend"), "eastus2/ptu");
  EXPECT_EQ(text("region"), "eastus2");
  EXPECT_EQ(text("error"), error);
  EXPECT_EQ(line.at("status").as_int64(), 429);
  EXPECT_EQ(line.at("attempts").as_int64(), 3);
  EXPECT_DOUBLE_EQ(line.at("latency_ms").as_double(), 12.046);
  EXPECT_TRUE(line.at("stream").as_bool());
  EXPECT_EQ(line.at("prompt_tokens").as_int64(), 11);
  EXPECT_EQ(line.at("completion_tokens").as_int64(), 22);
  EXPECT_EQ(line.at("total_tokens").as_int64(), 33);
  EXPECT_EQ(line.at("cached_tokens").as_int64(), 4);
  EXPECT_EQ(text("pinned_object"), "resp_1");
  EXPECT_EQ(text("routed_by"), "pin");
  EXPECT_TRUE(absl::EndsWith(text("ts"), "Z")) << text("ts");
  EXPECT_FALSE(lines[1].contains("pinned_object"));
  EXPECT_FALSE(lines[1].at("stream").as_bool());
  EXPECT_DOUBLE_EQ(lines[1].at("latency_ms").as_double(), 0.5);
  EXPECT_EQ(std::string(lines[1].at("error").as_string()), "");
}

TEST(AccessLog, UnflushedLinesStopAtTheCapAndTheDropIsCounted) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->path() + "/access.log";
  constexpr int kWritten = 2000;
  {
    absl::StatusOr<std::unique_ptr<AccessLog>> log = AccessLog::Open(path, 4096);
    ASSERT_TRUE(log.ok()) << log.status();
    AccessRecord record;
    record.method = "POST";
    record.route = "gpt-4o";
    record.status = 200;
    for (int i = 0; i < kWritten; ++i) {
      (*log)->Write(record);
    }
  }
  int64_t logged = 0;
  int64_t dropped = 0;
  for (const boost::json::object& line : ReadLines(path)) {
    if (const auto* count = line.if_contains("dropped_lines")) {
      dropped += count->as_int64();
    } else {
      ++logged;
    }
  }
  EXPECT_EQ(logged + dropped, kWritten) << "every line is either written or counted";
  EXPECT_GT(dropped, 0) << "a burst far over the cap between two flushes drops lines";
  EXPECT_LT(logged, kWritten);
}

}  // namespace
}  // namespace spillway
