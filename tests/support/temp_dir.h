// A private temporary directory for one test, removed with everything in it at scope exit.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace spillway::test {

class ScopedTempDir {
 public:
  // Under $TEST_TMPDIR, else $TMPDIR, else /tmp.
  static absl::StatusOr<ScopedTempDir> Create();
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ~ScopedTempDir();

  const std::string& path() const { return path_; }

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}

  std::string path_;
};

}  // namespace spillway::test
