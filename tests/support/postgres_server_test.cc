// PostgresServer starts a usable throwaway server, creates databases, and survives a Stop() and
// Restart() with its data; skipped where PostgreSQL is not installed.
#include "tests/support/postgres_server.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway::test {
namespace {

// The first value of the first row of `sql`'s result, run on a fresh connection to `url`.
absl::StatusOr<std::string> QueryValue(const std::string& url, const std::string& sql) {
  const std::string conninfo = url + "?connect_timeout=5&sslmode=disable";
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat("connect ", url, ": ", PQerrorMessage(conn.get())));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return absl::InternalError(absl::StrCat(sql, ": ", PQerrorMessage(conn.get())));
  }
  if (status == PGRES_COMMAND_OK || PQntuples(result.get()) == 0) return std::string();
  return std::string(PQgetvalue(result.get(), 0, 0));
}

class PostgresServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (PostgresServer::BinDir().empty()) {
      GTEST_SKIP() << "PostgreSQL server binaries not installed (apt-get install postgresql)";
    }
    const absl::Time begin = absl::Now();
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    std::fprintf(stderr, "PostgresServer::Start() took %s\n",
                 absl::FormatDuration(absl::Now() - begin).c_str());
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }

  std::unique_ptr<PostgresServer> server_;
};

TEST_F(PostgresServerTest, SurvivesStopAndRestartWithItsData) {
  absl::StatusOr<std::string> orders = server_->CreateDatabase("orders");
  ASSERT_TRUE(orders.ok()) << orders.status();
  EXPECT_EQ(*orders, absl::StrCat("postgres://spillway@127.0.0.1:", server_->port(), "/orders"));
  absl::StatusOr<std::string> other = server_->CreateDatabase("other_1");
  ASSERT_TRUE(other.ok()) << other.status();

  absl::StatusOr<std::string> one = QueryValue(*orders, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "1");
  ASSERT_TRUE(QueryValue(*orders, "CREATE TABLE kept (v text)").ok());
  ASSERT_TRUE(QueryValue(*orders, "INSERT INTO kept VALUES ('before restart')").ok());
  absl::StatusOr<std::string> database = QueryValue(*other, "SELECT current_database()");
  ASSERT_TRUE(database.ok()) << database.status();
  EXPECT_EQ(*database, "other_1");

  ASSERT_TRUE(server_->Stop().ok());
  const absl::Time refused_begin = absl::Now();
  absl::StatusOr<std::string> down = QueryValue(*orders, "SELECT 1");
  EXPECT_FALSE(down.ok());
  EXPECT_LT(absl::Now() - refused_begin, absl::Seconds(2)) << "refused, not timed out";
  EXPECT_TRUE(server_->Stop().ok()) << "stopping twice is harmless";

  absl::Status restarted = server_->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  one = QueryValue(*orders, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "1");
  absl::StatusOr<std::string> kept = QueryValue(*orders, "SELECT v FROM kept");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, "before restart");

  // Restart() of a running server stops it first.
  restarted = server_->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  kept = QueryValue(*orders, "SELECT v FROM kept");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, "before restart");
}

TEST_F(PostgresServerTest, RejectsUnsafeAndDuplicateNames) {
  for (const std::string& name :
       {std::string(), std::string("Orders"), std::string("a-b"),
        std::string("x\"; DROP DATABASE postgres; --"), std::string(64, 'a')}) {
    absl::StatusOr<std::string> url = server_->CreateDatabase(name);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  ASSERT_TRUE(server_->CreateDatabase("twice").ok());
  absl::StatusOr<std::string> again = server_->CreateDatabase("twice");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
}

TEST_F(PostgresServerTest, AcceptsAHundredConnections) {
  absl::StatusOr<std::string> url = server_->CreateDatabase("many");
  ASSERT_TRUE(url.ok()) << url.status();
  std::vector<std::unique_ptr<PGconn, decltype(&PQfinish)>> conns;
  for (int i = 0; i < 100; ++i) {
    conns.emplace_back(PQconnectdb((*url + "?connect_timeout=5").c_str()), &PQfinish);
    ASSERT_EQ(PQstatus(conns.back().get()), CONNECTION_OK)
        << i << ": " << PQerrorMessage(conns.back().get());
  }
}

}  // namespace
}  // namespace spillway::test
