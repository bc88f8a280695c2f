// A test fixture with a temporary directory of its own, and files written into it.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>

#include "tests/support/temp_dir.h"

namespace spillway::test {

class TempFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
  }
  // Writes `text` to `name` in the directory, byte for byte; returns its path.
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_->path() + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::optional<ScopedTempDir> dir_;
};

}  // namespace spillway::test
