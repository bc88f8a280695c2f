// See replica_session.h. One libpq connection of its own, polled with a short timeout so that
// stopping never waits long; reconnects with a growing pause while the database is away.
#include "controlplane/store/replica_session.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controlplane/store/postgres_connection.h"
#include "controlplane/store/store.h"
#include "spdlog/spdlog.h"

namespace spillway {
namespace {

// The lease's lock key, apart from the store's own ("Spillway" + 3).
constexpr char kTryLease[] = "SELECT pg_try_advisory_lock(6012751431592157563)";
constexpr auto kPoll = std::chrono::milliseconds(250);
constexpr auto kMaxPause = std::chrono::seconds(2);

struct ConnectionCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Connection = std::unique_ptr<PGconn, ConnectionCloser>;

Connection Connect(const std::string& url) {
  Connection conn(sql::ConnectPostgres(url, "spillway-cp replica"));
  if (conn != nullptr && PQstatus(conn.get()) != CONNECTION_OK) {
    conn.reset();
  }
  return conn;
}

// Runs `sql`: nullopt when it failed, else the first value of a one-row answer ("" for a
// command that returns no rows).
std::optional<std::string> Query(PGconn* conn, const char* sql) {
  PGresult* result = PQexec(conn, sql);
  const ExecStatusType status = PQresultStatus(result);
  std::optional<std::string> value;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
    value = status == PGRES_TUPLES_OK && PQntuples(result) == 1 ? PQgetvalue(result, 0, 0) : "";
  }
  PQclear(result);
  return value;
}

}  // namespace

ReplicaSession::ReplicaSession(std::string url, std::string display, Listeners listeners)
    : url_(std::move(url)), display_(std::move(display)), listeners_(std::move(listeners)) {}

ReplicaSession::~ReplicaSession() {
  stop_.store(true);
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ReplicaSession::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ReplicaSession::Run() {
  Connection conn;
  auto pause = std::chrono::milliseconds(100);
  // Heard of (or possibly missed) and not yet reloaded successfully.
  bool topology = false;
  bool health = false;
  bool retrying = false;  // the last reload failed
  const std::string listen = absl::StrCat("LISTEN ", kTopologyChannel, "; LISTEN ", kHealthChannel);
  while (!stop_.load()) {
    if (conn == nullptr) {
      conn = Connect(url_);
      if (conn == nullptr || !Query(conn.get(), listen.c_str()).has_value()) {
        conn.reset();
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::milliseconds>(pause * 2, kMaxPause);
        continue;
      }
      pause = std::chrono::milliseconds(100);
      spdlog::info("replica session to {}: listening for topology changes", display_);
      // Whatever committed while this replica was not listening.
      topology = true;
      health = true;
    }
    if (!holds_lease() && Query(conn.get(), kTryLease) == "t") {
      holds_lease_.store(true, std::memory_order_release);
      spdlog::info("replica session to {}: holds the fleet lease", display_);
    }
    // A notification that came in with the lease query's answer is already read: take those
    // before waiting, or a commit could go unheard until the next one.
    auto take_notifications = [&] {
      while (PGnotify* notify = PQnotifies(conn.get())) {
        const absl::string_view channel = notify->relname;
        topology |= channel == kTopologyChannel;
        health |= channel == kHealthChannel;
        PQfreemem(notify);
      }
    };
    take_notifications();
    // A reload owed goes at once, unless the last attempt failed: then the poll is the pause.
    const int wait_ms = (topology || health) && !retrying ? 0 : static_cast<int>(kPoll.count());
    pollfd socket = {PQsocket(conn.get()), POLLIN, 0};
    if (poll(&socket, 1, wait_ms) > 0) {
      if (PQconsumeInput(conn.get()) == 0) {
        spdlog::warn("replica session to {} lost: {}", display_, PQerrorMessage(conn.get()));
        if (holds_lease()) {
          spdlog::warn("replica session to {}: gave up the fleet lease", display_);
        }
        holds_lease_.store(false, std::memory_order_release);
        conn.reset();
        continue;
      }
      take_notifications();
    }
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      holds_lease_.store(false, std::memory_order_release);
      conn.reset();
      continue;
    }
    if (topology) {
      topology = !listeners_.on_topology();
    }
    if (health) {
      health = !listeners_.on_health();
    }
    retrying = topology || health;
  }
}

}  // namespace spillway
