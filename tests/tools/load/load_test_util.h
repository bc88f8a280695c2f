// Shared by the `spillwayctl load` integration tests: running the real binary and reading its
// JSON report.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/support/mock_aoai_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/temp_files_test.h"

namespace spillway::test {

// The key the mocks accept: distinctive, so a test can see that it is printed nowhere.
inline constexpr char kLoadKey[] = "load-test-key-5e1f0c";

// `spillwayctl load ARGS...`, stdout and stderr apart (stderr is a file: not a terminal).
inline CtlResult RunLoad(const ScopedTempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"load"};
  argv.insert(argv.end(), args.begin(), args.end());
  static int run = 0;
  return RunCtl(SPILLWAY_CTL_BIN, argv, dir.path() + "/stderr-" + std::to_string(++run));
}

// The JSON report; {} (and a failure) when it does not parse as an object.
inline boost::json::object ParseReport(const std::string& out) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(out, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << out;
  if (ec || !value.is_object()) return {};
  return value.as_object();
}

// A field of a report object as a number (-1 and a failure when missing).
inline int64_t Int(const boost::json::value& object, const char* key) {
  const boost::json::value* v = object.is_object() ? object.as_object().if_contains(key) : nullptr;
  EXPECT_TRUE(v != nullptr && v->is_int64()) << key << " in " << boost::json::serialize(object);
  return v != nullptr && v->is_int64() ? v->as_int64() : -1;
}
inline double Num(const boost::json::value& object, const char* key) {
  const boost::json::value* v = object.is_object() ? object.as_object().if_contains(key) : nullptr;
  EXPECT_TRUE(v != nullptr && v->is_number()) << key << " in " << boost::json::serialize(object);
  return v != nullptr && v->is_number() ? v->to_number<double>() : -1;
}

// A temporary directory (the runs' stderr files, certificates) and the real mock on a free
// port, which answers max_tokens tokens (its default of 16 would cut 50 short), a token a
// millisecond so streams have gaps to time.
class LoadMockTest : public TempFilesTest {
 protected:
  void StartMock(std::vector<std::string> extra = {}, const std::string& deployments = "gpt-4o") {
    std::vector<std::string> args = {"--api-keys",          kLoadKey, "--deployments",  deployments,
                                     "--completion-tokens", "1000",   "--ms-per-token", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<MockAoaiProcess>> mock = MockAoaiProcess::Start(args);
    ASSERT_TRUE(mock.ok()) << mock.status();
    mock_ = *std::move(mock);
  }

  std::unique_ptr<MockAoaiProcess> mock_;
};

}  // namespace spillway::test
