// Shared by the store's tests: each test runs against SQLite (a private directory) and against
// PostgreSQL (a fresh database on one server per test binary, started from Debian's own
// binaries; skipped where they are not installed), and reaches the store's own connection.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/store/sql.h"
#include "controlplane/store/store.h"
#include "controlplane/store/store_location.h"
#include "tests/support/postgres_server.h"
#include "tests/support/reference_topology.h"
#include "tests/support/temp_dir.h"

namespace spillway {

class TopologyStoreTestPeer {
 public:
  static sql::Connection* Connection(TopologyStore& store) { return store.db_.get(); }
};

namespace test {

enum class StoreBackend { kSqlite, kPostgres };

// For test names: "Sqlite", "Postgres".
std::string BackendName(const ::testing::TestParamInfo<StoreBackend>& info);

// The first column of the first row of `sql` as text, "<no row>" when there is none, or the
// error's text.
std::string QueryText(sql::Connection* db, absl::string_view sql);

// Whether `table` exists on `db`, asked the way its engine answers.
bool TableExists(sql::Connection* db, absl::string_view table);

// The server the PostgreSQL runs of this binary share; null when PostgreSQL is not installed.
// Started on first use, stopped when the binary exits.
PostgresServer* SharedPostgres();

// A fresh store for each test: a directory of its own for SQLite (under $TEST_TMPDIR or $TMPDIR,
// as ScopedTempDir picks), a database of its own for PostgreSQL; both removed afterwards.
class StoreTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override {
    store_.reset();  // closes the database before its directory goes
    temp_dir_.reset();
  }

  bool sqlite() const { return GetParam() == StoreBackend::kSqlite; }

  // Opens (or reopens) the store at location_.
  TopologyStore& Store();
  void Close() { store_.reset(); }
  // The store's own connection (opened if needed).
  sql::Connection* Db() { return TopologyStoreTestPeer::Connection(Store()); }
  // A second connection to the same database, the way another process would see it.
  std::unique_ptr<sql::Connection> OpenRaw();
  // What the store's messages call the database: the file, or the URL.
  std::string Where() const { return location_.Display(); }

  std::optional<ScopedTempDir> temp_dir_;
  std::string dir_;
  std::string path_;  // the SQLite file (SQLite runs)
  StoreLocation location_;
  std::unique_ptr<TopologyStore> store_;
};

// Runs a TEST_P suite on both engines.
#define SPILLWAY_STORE_BACKENDS(suite)                                                   \
  INSTANTIATE_TEST_SUITE_P(Engines, suite,                                               \
                           ::testing::Values(::spillway::test::StoreBackend::kSqlite,    \
                                             ::spillway::test::StoreBackend::kPostgres), \
                           ::spillway::test::BackendName)

}  // namespace test
}  // namespace spillway
