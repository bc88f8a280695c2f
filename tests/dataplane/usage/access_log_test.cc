// The access log's bounds: a field quoting client input is cut, and a thread's unflushed lines
// stop growing at the cap, the lines refused counted in a line of their own (issue 15, item 7).
#include "dataplane/usage/access_log.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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
