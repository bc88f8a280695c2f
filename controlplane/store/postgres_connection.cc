// libpq behind sql::Connection. Statements run unnamed (PQexecParams) rather than prepared on
// the server, so nothing is lost when the connection is re-established; results come back as
// text, bytea unescaped by libpq.
#include "controlplane/store/postgres_connection.h"

#include <libpq-fe.h>

#include <chrono>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace spillway::sql {
namespace {

// PostgreSQL type ids for the parameters the store binds.
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
// Taken for the length of a schema migration so that replicas starting together migrate
// one at a time ("Spillway" in ASCII).
constexpr char kBeginSchema[] = "BEGIN; SELECT pg_advisory_xact_lock(6012751431592157561)";
// Taken before a serializable transaction begins and released after it ends, so that topology
// changes through several replicas queue instead of failing each other: the snapshot is taken
// after the wait. SERIALIZABLE stays the guarantee; the lock only spares the retries.
constexpr char kLockSerial[] = "SELECT pg_advisory_lock(6012751431592157562)";
constexpr char kUnlockSerial[] = "SELECT pg_advisory_unlock(6012751431592157562)";

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// SQLSTATE classes decide the status: serialization failures and deadlocks are Aborted (the
// caller retries the transaction), a lost or refused connection and a database shutting
// down are Unavailable, the rest Internal.
absl::StatusCode CodeFor(const char* sqlstate) {
  if (sqlstate == nullptr) {
    return absl::StatusCode::kUnavailable;  // no answer at all: the connection failed
  }
  const absl::string_view state = sqlstate;
  if (state == "40001" || state == "40P01") {
    return absl::StatusCode::kAborted;
  }
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") ||
      absl::StartsWith(state, "53")) {
    return absl::StatusCode::kUnavailable;
  }
  if (absl::StartsWith(state, "22")) {
    return absl::StatusCode::kInvalidArgument;  // data exception: a value it cannot hold
  }
  return absl::StatusCode::kInternal;
}

class PostgresConnection;

class PostgresStatement final : public StatementDriver {
 public:
  PostgresStatement(PostgresConnection* db, std::string sql, absl::string_view step)
      : db_(db), sql_(std::move(sql)), step_(step) {}

  void BindInt(int index, int64_t value) override { Set(index, absl::StrCat(value), kInt8Oid, 0); }
  void BindText(int index, absl::string_view text) override {
    Set(index, std::string(text), kTextOid, 0);
  }
  void BindBlob(int index, absl::string_view bytes) override {
    Set(index, std::string(bytes), kByteaOid, 1);
  }

  absl::StatusOr<bool> Step() override;
  void Reset() override {
    result_.reset();
    row_ = -1;
  }
  int64_t Changes() const override { return changes_; }

  int64_t Int(int column) const override {
    int64_t value = 0;
    // SUM() over bigint is numeric in PostgreSQL: whole numbers, read the same way.
    (void)absl::SimpleAtoi(Value(column), &value);
    return value;
  }
  std::string Text(int column) const override { return std::string(Value(column)); }
  absl::string_view Blob(int column) const override {
    if (result_ == nullptr || PQgetisnull(result_.get(), row_, column)) {
      return {};
    }
    size_t size = 0;
    unsigned char* bytes = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row_, column)), &size);
    if (bytes == nullptr) {
      return {};
    }
    blob_.assign(reinterpret_cast<const char*>(bytes), size);
    PQfreemem(bytes);
    return blob_;
  }

 private:
  struct Parameter {
    std::string value;
    Oid type = 0;
    int format = 0;
    bool set = false;
  };

  void Set(int index, std::string value, Oid type, int format) {
    if (index < 1 || index > 1000) {
      bad_index_ = index;
      return;
    }
    if (parameters_.size() < static_cast<size_t>(index)) {
      parameters_.resize(index);
    }
    parameters_[index - 1] = {std::move(value), type, format, true};
  }
  absl::string_view Value(int column) const {
    if (result_ == nullptr || column >= PQnfields(result_.get())) {
      return {};
    }
    return absl::string_view(PQgetvalue(result_.get(), row_, column),
                             PQgetlength(result_.get(), row_, column));
  }

  PostgresConnection* db_;
  std::string sql_;
  std::string step_;
  std::vector<Parameter> parameters_;
  int bad_index_ = 0;
  Result result_;
  int row_ = -1;
  int64_t changes_ = 0;
  mutable std::string blob_;  // the last Blob() unescaped, valid until the next Step()
};

class PostgresConnection final : public Connection {
 public:
  PostgresConnection(PGconn* conn, std::string display)
      : conn_(conn), display_(std::move(display)) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  Dialect dialect() const override { return Dialect::kPostgres; }
  const std::string& name() const override { return display_; }

  // "<url without password>: <step>: <PostgreSQL's message>".
  absl::Status Error(const PGresult* result, absl::string_view step) const {
    const char* sqlstate =
        result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string message = result != nullptr && *PQresultErrorMessage(result) != '\0'
                              ? PQresultErrorMessage(result)
                              : PQerrorMessage(conn_);
    absl::StripTrailingAsciiWhitespace(&message);
    if (PQstatus(conn_) != CONNECTION_OK) {
      sqlstate = nullptr;  // whatever the statement said, the connection is gone
    }
    return absl::Status(CodeFor(sqlstate), absl::StrCat(display_, ": ", step, ": ", message));
  }

  // A connection lost between transactions is re-established here; within one, the
  // transaction is gone with it and the caller hears Unavailable.
  absl::Status EnsureConnected(absl::string_view step) {
    if (PQstatus(conn_) == CONNECTION_OK) {
      return absl::OkStatus();
    }
    // Callers queue on this connection: while the database is unreachable, one attempt per
    // kReconnectPause answers for all of them, so a host that swallows packets costs each
    // caller a prompt Unavailable, not connect_timeout in turn.
    const auto now = std::chrono::steady_clock::now();
    if (now < next_reconnect_) {
      return absl::UnavailableError(absl::StrCat(display_, ": ", step,
                                                 ": the database is unreachable (", last_failure_,
                                                 "); trying again shortly"));
    }
    PQreset(conn_);
    holds_serial_lock_ = false;  // session locks end with their session
    if (PQstatus(conn_) != CONNECTION_OK) {
      absl::Status status = Error(nullptr, step);
      last_failure_ = PQerrorMessage(conn_);
      absl::StripTrailingAsciiWhitespace(&last_failure_);
      next_reconnect_ = std::chrono::steady_clock::now() + kReconnectPause;
      return status;
    }
    return absl::OkStatus();
  }

  // Runs constant SQL, possibly several statements; its (last) result when it succeeded.
  absl::StatusOr<Result> Run(const char* sql, absl::string_view step) {
    if (absl::Status status = EnsureConnected(step); !status.ok()) {
      return status;
    }
    return Checked(Result(PQexec(conn_, sql)), step);
  }

  // Runs one statement with parameters.
  absl::StatusOr<Result> RunParams(const std::string& sql, int count, const Oid* types,
                                   const char* const* values, const int* lengths,
                                   const int* formats, absl::string_view step) {
    if (absl::Status status = EnsureConnected(step); !status.ok()) {
      return status;
    }
    return Checked(
        Result(PQexecParams(conn_, sql.c_str(), count, types, values, lengths, formats, 0)), step);
  }

  absl::Status Exec(absl::string_view sql, absl::string_view step) override {
    return Run(std::string(sql).c_str(), step).status();
  }

  absl::StatusOr<std::unique_ptr<StatementDriver>> Prepare(absl::string_view sql,
                                                           absl::string_view step) override {
    return std::make_unique<PostgresStatement>(this, PostgresParameters(sql), step);
  }

  absl::Status Begin(TransactionMode mode) override {
    switch (mode) {
      case TransactionMode::kRead:
        return Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin read transaction");
      case TransactionMode::kWrite:
        return Exec("BEGIN", "begin transaction");
      case TransactionMode::kSerializable: {
        if (absl::Status status = Exec(kLockSerial, "wait for other replicas' changes");
            !status.ok()) {
          return status;
        }
        holds_serial_lock_ = true;
        absl::Status status =
            Exec("BEGIN ISOLATION LEVEL SERIALIZABLE", "begin serializable transaction");
        if (!status.ok()) {
          ReleaseSerialLock();
        }
        return status;
      }
      case TransactionMode::kSchema:
        return Exec(kBeginSchema, "begin schema transaction");
    }
    return absl::InternalError("unknown transaction mode");
  }

  absl::Status Commit() override {
    absl::StatusOr<Result> result = Run("COMMIT", "commit");
    if (!InTransaction()) {
      ReleaseSerialLock();
    }
    if (!result.ok()) {
      return result.status();
    }
    // COMMIT of a transaction that already failed answers ROLLBACK, not an error.
    if (absl::string_view(PQcmdStatus(result->get())) == "ROLLBACK") {
      return absl::AbortedError(
          absl::StrCat(display_, ": commit: the transaction was rolled back"));
    }
    return absl::OkStatus();
  }

  void Rollback() override {
    if (PQstatus(conn_) == CONNECTION_OK) {
      PQclear(PQexec(conn_, "ROLLBACK"));
    }
    ReleaseSerialLock();
  }

  bool InTransaction() const override {
    const PGTransactionStatusType status = PQtransactionStatus(conn_);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
  }

 private:
  // `result` if the command succeeded, else its error.
  absl::StatusOr<Result> Checked(Result result, absl::string_view step) const {
    const ExecStatusType status =
        result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return Error(result.get(), step);
    }
    return result;
  }

  // A connection that is gone took its session lock with it.
  void ReleaseSerialLock() {
    if (holds_serial_lock_ && PQstatus(conn_) == CONNECTION_OK) {
      PQclear(PQexec(conn_, kUnlockSerial));
    }
    holds_serial_lock_ = false;
  }

  static constexpr std::chrono::milliseconds kReconnectPause{1000};

  PGconn* conn_;
  std::string display_;
  bool holds_serial_lock_ = false;
  std::chrono::steady_clock::time_point next_reconnect_;
  std::string last_failure_;
};

absl::StatusOr<bool> PostgresStatement::Step() {
  if (row_ >= 0 && result_ != nullptr) {
    ++row_;
    return row_ < PQntuples(result_.get());
  }
  if (bad_index_ != 0) {
    return absl::InternalError(
        absl::StrCat(db_->name(), ": ", step_, ": parameter ", bad_index_, " is out of range"));
  }
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  std::vector<Oid> types;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Parameter& parameter = parameters_[i];
    if (!parameter.set) {
      return absl::InternalError(
          absl::StrCat(db_->name(), ": ", step_, ": parameter ", i + 1, " is not bound"));
    }
    values.push_back(parameter.value.c_str());
    lengths.push_back(static_cast<int>(parameter.value.size()));
    formats.push_back(parameter.format);
    types.push_back(parameter.type);
  }
  absl::StatusOr<Result> result =
      db_->RunParams(sql_, static_cast<int>(values.size()), types.data(), values.data(),
                     lengths.data(), formats.data(), step_);
  if (!result.ok()) {
    return result.status();
  }
  result_ = *std::move(result);
  const char* tuples = PQcmdTuples(result_.get());
  changes_ = 0;
  (void)absl::SimpleAtoi(tuples, &changes_);
  row_ = 0;
  return PQntuples(result_.get()) > 0;
}

void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

}  // namespace

std::string PostgresParameters(absl::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  bool quoted = false;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'') {
      quoted = !quoted;
    }
    if (c == '?' && !quoted && i + 1 < sql.size() && absl::ascii_isdigit(sql[i + 1])) {
      out.push_back('$');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

PGconn* ConnectPostgres(const std::string& url, const char* application_name) {
  // The URL's own settings win over these defaults (expand_dbname: later keywords override).
  const char* keywords[] = {"connect_timeout",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "application_name",
                            "dbname",
                            nullptr};
  const char* values[] = {"5", "10", "5", "3", application_name, url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn != nullptr) {
    // Notices (e.g. "relation already exists, skipping", the server's shutdown) would go to
    // stderr unasked; failures are reported as errors.
    PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  }
  return conn;
}

absl::StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url,
                                                         const std::string& display) {
  PGconn* conn = ConnectPostgres(url, "spillway-cp");
  if (conn == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(display, ": cannot allocate a connection"));
  }
  // From here on the connection owns the handle and closes it on every path.
  auto connection = std::make_unique<PostgresConnection>(conn, display);
  if (PQstatus(conn) != CONNECTION_OK) {
    return connection->Error(nullptr, "connect");
  }
  return connection;
}

}  // namespace spillway::sql
