// See postgres_server.h. PostgreSQL refuses to run as root, and tests here run as root, so the
// server's binaries then run as the `postgres` user through setpriv, in a temp dir it owns.
#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace spillway::test {
namespace {

constexpr char kSuperuser[] = "spillway";
constexpr char kDebianBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr char kSetpriv[] = "/usr/bin/setpriv";
constexpr absl::Duration kInitdbTimeout = absl::Seconds(120);
constexpr absl::Duration kReadyTimeout = absl::Seconds(30);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);

std::string Tail(const std::string& output) {
  constexpr size_t kMax = 4000;
  return output.size() <= kMax ? output : "..." + output.substr(output.size() - kMax);
}

bool HasServerBinaries(const std::string& dir) {
  return !dir.empty() && access((dir + "/initdb").c_str(), X_OK) == 0 &&
         access((dir + "/postgres").c_str(), X_OK) == 0;
}

// pg_config's answer to `flag`, or "" when pg_config is missing or fails.
std::string PgConfig(const char* flag) {
  FILE* pipe = popen(absl::StrCat("pg_config ", flag, " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return "";
  std::string output;
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  if (pclose(pipe) != 0) return "";
  return std::string(absl::StripAsciiWhitespace(output));
}

std::string FindBinDir() {
  std::vector<std::string> candidates;
  // Debian's pg_config comes with libpq and names the client's bin dir; the server of the
  // same major version sits in /usr/lib/postgresql/<major>/bin.
  candidates.push_back(PgConfig("--bindir"));
  absl::string_view version = PgConfig("--version");  // "PostgreSQL 15.18 (Debian ...)"
  if (absl::ConsumePrefix(&version, "PostgreSQL ")) {
    const size_t end = version.find_first_not_of("0123456789");
    int major = 0;
    if (absl::SimpleAtoi(version.substr(0, end), &major)) {
      candidates.push_back(absl::StrCat("/usr/lib/postgresql/", major, "/bin"));
    }
  }
  candidates.push_back(kDebianBinDir);
  for (const std::string& dir : candidates) {
    if (HasServerBinaries(dir)) return dir;
  }
  return "";
}

// Who runs the server's binaries: nobody in particular unless we are root.
struct RunAs {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

absl::StatusOr<RunAs> ServerUser() {
  RunAs run_as;
  if (geteuid() != 0) return run_as;
  passwd entry;
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwnam_r("postgres", &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return absl::FailedPreconditionError(
        "running as root, which PostgreSQL refuses, and there is no 'postgres' user to run "
        "initdb and postgres as");
  }
  if (access(kSetpriv, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("running as root, which PostgreSQL refuses, and ", kSetpriv,
                     " is missing to switch to "
                     "the 'postgres' user"));
  }
  run_as.switch_user = true;
  run_as.uid = entry.pw_uid;
  run_as.gid = entry.pw_gid;
  return run_as;
}

// Starts `binary` as the server's user. setpriv execs in place, so the pid is the server's;
// it must restore PR_SET_PDEATHSIG, which the kernel clears when the uid changes.
absl::StatusOr<std::unique_ptr<ChildProcess>> StartAs(const RunAs& run_as,
                                                      const std::string& binary,
                                                      std::vector<std::string> args,
                                                      ChildProcessOptions options) {
  if (!run_as.switch_user) return ChildProcess::Start(binary, args, std::move(options));
  std::vector<std::string> wrapped = {absl::StrCat("--reuid=", run_as.uid),
                                      absl::StrCat("--regid=", run_as.gid), "--clear-groups",
                                      "--pdeathsig=keep", binary};
  wrapped.insert(wrapped.end(), args.begin(), args.end());
  return ChildProcess::Start(kSetpriv, wrapped, std::move(options));
}

// A port nobody else holds, kept by a socket that never listens: postgres (SO_REUSEADDR)
// can still bind it, while bind(0) elsewhere never picks it.
absl::StatusOr<std::pair<PortHold, int>> ReservePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot bind a free port on 127.0.0.1: ", std::strerror(error)));
  }
  const int port = ntohs(address.sin_port);
  // Taken over before the first socket closes, so the port is never free in between.
  absl::StatusOr<PortHold> hold = PortHold::IfFree(port);
  ::close(fd);
  if (!hold.ok()) return hold.status();
  return std::make_pair(*std::move(hold), port);
}

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};

bool ValidDatabaseName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;  // NAMEDATALEN - 1
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

std::string PostgresServer::BinDir() {
  static const std::string* const dir = new std::string(FindBinDir());
  return *dir;
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  const std::string bin_dir = BinDir();
  if (bin_dir.empty()) {
    return absl::NotFoundError(absl::StrCat("PostgreSQL server binaries not found (tried ",
                                            "pg_config --bindir and ", kDebianBinDir, ")"));
  }
  absl::StatusOr<RunAs> run_as = ServerUser();
  if (!run_as.ok()) return run_as.status();
  absl::StatusOr<ScopedTempDir> dir = ScopedTempDir::Create();
  if (!dir.ok()) return dir.status();
  // initdb creates the data directory itself, as the server's user, so only the temp dir
  // (still empty) changes hands; root removes it regardless in the end.
  if (run_as->switch_user && chown(dir->path().c_str(), run_as->uid, run_as->gid) != 0) {
    return absl::InternalError(
        absl::StrCat("chown ", dir->path(), " to postgres: ", std::strerror(errno)));
  }

  const std::string data_dir = dir->path() + "/data";
  const std::string initdb = bin_dir + "/initdb";
  absl::StatusOr<std::unique_ptr<ChildProcess>> init =
      StartAs(*run_as, initdb,
              {"-D", data_dir, "-U", kSuperuser, "-A", "trust", "-E", "UTF8", "--locale=C",
               "--no-sync", "--no-instructions"},
              {.name = "initdb", .echo = false, .env = {}});
  if (!init.ok()) return init.status();
  absl::StatusOr<int> code = (*init)->Wait(kInitdbTimeout);
  if (!code.ok() || *code != 0) {
    (*init)->Kill();
    return absl::InternalError(
        absl::StrCat("initdb -D ", data_dir, " failed (",
                     code.ok() ? absl::StrCat("exit code ", *code) : code.status().ToString(), ")",
                     run_as->switch_user
                         ? "; it runs as user postgres, which must be able to reach " + dir->path()
                         : "",
                     "; output:\n", Tail((*init)->Output())));
  }

  absl::StatusOr<std::pair<PortHold, int>> port = ReservePort();
  if (!port.ok()) return port.status();
  std::unique_ptr<PostgresServer> server(
      new PostgresServer(bin_dir, *std::move(dir), std::move(port->first), port->second));
  if (absl::Status started = server->RunServer(); !started.ok()) return started;
  return server;
}

absl::Status PostgresServer::RunServer() {
  absl::StatusOr<RunAs> run_as = ServerUser();
  if (!run_as.ok()) return run_as.status();
  // A socket path over sun_path's limit stops postgres from starting; tests connect over TCP
  // anyway, so a deep temp dir just goes without the unix socket.
  const std::string socket_path = absl::StrCat(dir_.path(), "/.s.PGSQL.", port_);
  const std::string socket_dir =
      socket_path.size() < sizeof(sockaddr_un{}.sun_path) ? dir_.path() : "";
  const std::string data_dir = dir_.path() + "/data";
  std::vector<std::string> args = {"-D", data_dir, "-p", absl::StrCat(port_)};
  for (const std::string& setting : {
           std::string("listen_addresses=127.0.0.1"),
           "unix_socket_directories=" + socket_dir,
           // Durability is worthless for a throwaway server; startup and commits get faster.
           std::string("fsync=off"),
           std::string("synchronous_commit=off"),
           std::string("full_page_writes=off"),
           std::string("max_connections=200"),
       }) {
    args.push_back("-c");
    args.push_back(setting);
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> server =
      StartAs(*run_as, bin_dir_ + "/postgres", args,
              {.name = absl::StrCat("postgres:", port_), .echo = true, .env = {}});
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  absl::StatusOr<std::string> ready =
      server_->WaitForLine("database system is ready to accept connections", kReadyTimeout);
  if (!ready.ok()) {
    server_->Kill();
    (void)server_->Wait(absl::Seconds(5));
    server_.reset();
    return absl::UnavailableError(absl::StrCat("postgres -D ", data_dir, " on 127.0.0.1:", port_,
                                               " did not start: ", ready.status().message()));
  }
  return absl::OkStatus();
}

PostgresServer::~PostgresServer() {
  if (server_ == nullptr) return;
  // Immediate shutdown: nothing here is worth a checkpoint. SIGKILL (by ~ChildProcess) if it
  // hangs; its backends then notice the postmaster's death and exit by themselves.
  if (server_->Signal(SIGQUIT).ok() && server_->Wait(absl::Seconds(10)).ok()) {
    server_.reset();
    return;
  }
  server_->Kill();
  (void)server_->Wait(absl::Seconds(5));
  server_.reset();
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(const std::string& name) {
  if (!ValidDatabaseName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("database name '", name, "' is not 1 to 63 characters of [a-z0-9_]"));
  }
  const std::string conninfo = absl::StrCat("host=127.0.0.1 port=", port_, " user=", kSuperuser,
                                            " dbname=postgres sslmode=disable connect_timeout=10");
  std::unique_ptr<PGconn, PgConnDeleter> conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat(
        "creating database ", name, ": cannot connect to postgres on 127.0.0.1:", port_, ": ",
        conn == nullptr ? "out of memory" : PQerrorMessage(conn.get())));
  }
  // The name is validated above, so quoting it is enough.
  const std::string sql = absl::StrCat("CREATE DATABASE \"", name, "\"");
  std::unique_ptr<PGresult, PgResultDeleter> result(PQexec(conn.get(), sql.c_str()));
  if (PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    const std::string message =
        absl::StrCat(sql, " on 127.0.0.1:", port_, ": ",
                     absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn.get())));
    if (state != nullptr && std::strcmp(state, "42P04") == 0) {  // duplicate_database
      return absl::AlreadyExistsError(message);
    }
    return absl::InternalError(message);
  }
  return absl::StrCat("postgres://", kSuperuser, "@127.0.0.1:", port_, "/", name);
}

absl::Status PostgresServer::Stop() {
  if (server_ == nullptr) return absl::OkStatus();
  const std::string name = absl::StrCat("postgres on 127.0.0.1:", port_);
  if (absl::Status signaled = server_->Signal(SIGINT); !signaled.ok()) {
    server_.reset();
    return absl::InternalError(absl::StrCat("fast shutdown of ", name, ": ", signaled.message()));
  }
  absl::StatusOr<int> code = server_->Wait(kStopTimeout);
  const std::string output = server_->Output();
  if (!code.ok()) {
    server_->Kill();
    (void)server_->Wait(absl::Seconds(5));
  }
  server_.reset();
  if (!code.ok() || *code != 0) {
    return absl::InternalError(
        absl::StrCat("fast shutdown of ", name, " failed (",
                     code.ok() ? absl::StrCat("exit code ", *code) : code.status().ToString(),
                     "); output:\n", Tail(output)));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Restart() {
  if (absl::Status stopped = Stop(); !stopped.ok()) return stopped;
  return RunServer();
}

}  // namespace spillway::test
