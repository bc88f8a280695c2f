// Shared by the store's tests: a private directory per test, the reference topology, and a
// peer that reaches the store's own SQLite connection.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/topology_yaml.h"
#include "controlplane/store/store.h"
#include "tests/support/reference_topology.h"
#include "tests/support/temp_dir.h"

namespace spillway {

class TopologyStoreTestPeer {
 public:
  static sqlite3* Connection(TopologyStore& store) { return store.db_; }
};

namespace test {

// A fresh directory of its own for the test's database (under $TEST_TMPDIR or $TMPDIR, as
// ScopedTempDir picks), removed afterwards whether the test passed or not.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    temp_dir_.emplace(*std::move(dir));
    dir_ = temp_dir_->path();
    path_ = dir_ + "/topology.db";
  }

  void TearDown() override {
    store_.reset();  // closes the database before its directory goes
    temp_dir_.reset();
  }

  // Opens (or reopens) the store at path_.
  TopologyStore& Store() {
    if (store_ == nullptr) {
      absl::StatusOr<std::unique_ptr<TopologyStore>> opened = TopologyStore::Open(path_);
      if (!opened.ok()) {
        ADD_FAILURE() << opened.status();
        // abort() skips every destructor: remove the directory here, or it stays behind.
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
        std::abort();  // every later step would only repeat the failure
      }
      store_ = *std::move(opened);
    }
    return *store_;
  }

  void Close() { store_.reset(); }

  std::optional<ScopedTempDir> temp_dir_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<TopologyStore> store_;
};

}  // namespace test
}  // namespace spillway
