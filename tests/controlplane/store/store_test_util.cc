// See store_test_util.h.
#include "tests/controlplane/store/store_test_util.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "controlplane/store/postgres_connection.h"
#include "controlplane/store/sqlite_connection.h"

namespace spillway::test {

std::string BackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param == StoreBackend::kSqlite ? "Sqlite" : "Postgres";
}

std::string QueryText(sql::Connection* db, absl::string_view sql) {
  absl::StatusOr<sql::Statement> statement = sql::Statement::Prepare(db, sql, "test query");
  if (!statement.ok()) {
    return statement.status().ToString();
  }
  absl::StatusOr<bool> row = statement->Step();
  if (!row.ok()) {
    return row.status().ToString();
  }
  return *row ? statement->Text(0) : "<no row>";
}

bool TableExists(sql::Connection* db, absl::string_view table) {
  const std::string sql =
      db->dialect() == sql::Dialect::kSqlite
          ? absl::StrCat("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '",
                         table, "'")
          : absl::StrCat(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                "current_schema() AND table_name = '",
                table, "'");
  return QueryText(db, sql) == "1";
}

PostgresServer* SharedPostgres() {
  // Destroyed at exit, which stops the server and removes its directory.
  static std::unique_ptr<PostgresServer> server = []() -> std::unique_ptr<PostgresServer> {
    if (PostgresServer::BinDir().empty()) {
      return nullptr;
    }
    absl::StatusOr<std::unique_ptr<PostgresServer>> started = PostgresServer::Start();
    if (!started.ok()) {
      ADD_FAILURE() << started.status();
      return nullptr;
    }
    return *std::move(started);
  }();
  return server.get();
}

void StoreTest::SetUp() {
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  temp_dir_.emplace(*std::move(dir));
  dir_ = temp_dir_->path();
  path_ = dir_ + "/topology.db";
  if (sqlite()) {
    location_.sqlite_path = path_;
    return;
  }
  PostgresServer* server = SharedPostgres();
  if (server == nullptr) {
    GTEST_SKIP() << "PostgreSQL 15 is not installed (deploy/install-deps.sh installs it)";
  }
  static std::atomic<int> next{0};
  absl::StatusOr<std::string> url = server->CreateDatabase(absl::StrCat("store_", ++next));
  ASSERT_TRUE(url.ok()) << url.status();
  location_.kind = StoreLocation::Kind::kPostgres;
  location_.postgres_url = *url;
}

TopologyStore& StoreTest::Store() {
  if (store_ == nullptr) {
    absl::StatusOr<std::unique_ptr<TopologyStore>> opened = TopologyStore::Open(location_);
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

std::unique_ptr<sql::Connection> StoreTest::OpenRaw() {
  absl::StatusOr<std::unique_ptr<sql::Connection>> db =
      sqlite() ? sql::OpenSqlite(path_)
               : sql::OpenPostgres(location_.postgres_url, location_.Display());
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

}  // namespace spillway::test
