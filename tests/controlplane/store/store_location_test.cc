// --store and --db (issue 20): which store, and a PostgreSQL password never shown.
#include "controlplane/store/store_location.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace spillway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(StoreLocation, DbIsTheSqliteShorthand) {
  absl::StatusOr<StoreLocation> location = ParseStoreLocation("", "/var/lib/spillway/t.db");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->kind, StoreLocation::Kind::kSqlite);
  EXPECT_EQ(location->sqlite_path, "/var/lib/spillway/t.db");
  EXPECT_EQ(location->Display(), "/var/lib/spillway/t.db");
}

TEST(StoreLocation, SqliteTakesThePathAfterTheScheme) {
  absl::StatusOr<StoreLocation> location = ParseStoreLocation("sqlite:/data/topology.db", "");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->kind, StoreLocation::Kind::kSqlite);
  EXPECT_EQ(location->sqlite_path, "/data/topology.db");
  location = ParseStoreLocation("sqlite:relative.db", "");
  ASSERT_TRUE(location.ok());
  EXPECT_EQ(location->sqlite_path, "relative.db");
}

TEST(StoreLocation, PostgresKeepsTheUrlAndShowsItWithoutItsPassword) {
  absl::StatusOr<StoreLocation> location = ParseStoreLocation(
      "postgres://spillway:s3cret@db.internal:5432/spillway?sslmode=require", "");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->kind, StoreLocation::Kind::kPostgres);
  EXPECT_EQ(location->postgres_url,
            "postgres://spillway:s3cret@db.internal:5432/spillway?sslmode=require");
  EXPECT_EQ(location->Display(),
            "postgres://spillway:***@db.internal:5432/spillway?sslmode=require");
  // Unencoded '/' and '@' in a password still end up hidden.
  location = ParseStoreLocation("postgres://spillway:pa/ss@w0rd@db:5432/spillway", "");
  ASSERT_TRUE(location.ok());
  EXPECT_EQ(location->Display(), "postgres://spillway:***@db:5432/spillway");
  location = ParseStoreLocation("postgresql://spillway@127.0.0.1:5432/spillway", "");
  ASSERT_TRUE(location.ok());
  EXPECT_EQ(location->Display(), "postgresql://spillway@127.0.0.1:5432/spillway");
}

TEST(StoreLocation, RefusesNoneBothAndUnknownStoresNamingTheFlag) {
  absl::StatusOr<StoreLocation> none = ParseStoreLocation("", "");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("--store is required"));
  absl::StatusOr<StoreLocation> both = ParseStoreLocation("sqlite:a.db", "b.db");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("not both"));
  absl::StatusOr<StoreLocation> empty_path = ParseStoreLocation("sqlite:", "");
  ASSERT_FALSE(empty_path.ok());
  EXPECT_THAT(empty_path.status().message(), HasSubstr("no path"));
  absl::StatusOr<StoreLocation> unknown = ParseStoreLocation("mysql://root:hunter2@db/x", "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("expected sqlite:PATH or postgres://"));
  EXPECT_THAT(unknown.status().message(), HasSubstr("mysql://root:***@db/x"));
  EXPECT_THAT(unknown.status().message(), Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace spillway
