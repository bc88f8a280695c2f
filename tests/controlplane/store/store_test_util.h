// Shared by the store's tests: a private directory per test, the reference topology, and a
// peer that reaches the store's own SQLite connection.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/topology_yaml.h"
#include "controlplane/store/store.h"
#include "tests/support/reference_topology.h"

namespace spillway {

class TopologyStoreTestPeer {
 public:
  static sqlite3* Connection(TopologyStore& store) { return store.db_; }
};

namespace test {

// A fresh directory for the test's database, removed afterwards.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/spillway-store-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/topology.db";
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Opens (or reopens) the store at path_.
  TopologyStore& Store() {
    if (store_ == nullptr) {
      absl::StatusOr<std::unique_ptr<TopologyStore>> opened = TopologyStore::Open(path_);
      if (!opened.ok()) {
        ADD_FAILURE() << opened.status();
        std::abort();  // every later step would only repeat the failure
      }
      store_ = *std::move(opened);
    }
    return *store_;
  }

  void Close() { store_.reset(); }

  std::string dir_;
  std::string path_;
  std::unique_ptr<TopologyStore> store_;
};

}  // namespace test
}  // namespace spillway
