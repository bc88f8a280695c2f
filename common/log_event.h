// Process logs as text or JSON lines (--log-format), and the structured events operators
// filter on: circuits changing, tables applied, reconnects, drains (docs/operations.md#logs).
#pragma once

#include <spdlog/common.h>

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spdlog {
class formatter;
}

namespace spillway {

enum class LogFormat {
  kText,  // spdlog's own pattern: the lines operators have always read
  kJson,  // one JSON object per line (ts, level, program, msg; event and its fields)
};

// "text" or "json"; anything else is an error that names --log-format.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view value);

// Chooses how every line of spdlog's default logger looks, once, at startup (before other
// threads log). Text leaves spdlog's pattern as it is. Json also routes gRPC's own log lines
// through spdlog, so that every line the process writes is one JSON object.
void SetUpProcessLog(absl::string_view program, LogFormat format);
LogFormat ProcessLogFormat();

// The formatter json mode installs: {"ts":"2026-12-05T10:11:12.345Z","level":"info",
// "program":...,"msg":...} plus "event" and its fields when the line is a LogEvent. Values
// are escaped by Boost.JSON; bytes that are not UTF-8 become U+FFFD, so every line parses.
std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter(std::string program);

// One field of an event. Keys are literals naming what the value is ("backend", "version");
// the fields `ts`, `level`, `program`, `logger`, `msg` and `event` belong to the line, so a
// field with one of those keys is written with a trailing '_'. Strings are referenced, not
// copied: a LogField lives for the LogEvent call it is written in.
//
// Never pass a secret as a value: API keys, bearer tokens, client secrets, Entra ID tokens,
// request or response bodies. Name the thing instead (a backend id, a key's name, a file's
// path).
class LogField {
 public:
  using Value = std::variant<absl::string_view, int64_t, uint64_t, double, bool>;

  template <std::signed_integral T>
  LogField(absl::string_view key, T value) : key_(key), value_(static_cast<int64_t>(value)) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) LogField(absl::string_view key, T value)
      : key_(key), value_(static_cast<uint64_t>(value)) {}
  LogField(absl::string_view key, bool value) : key_(key), value_(value) {}
  LogField(absl::string_view key, double value) : key_(key), value_(value) {}
  LogField(absl::string_view key, absl::string_view value) : key_(key), value_(value) {}
  LogField(absl::string_view key, const char* value)
      : key_(key), value_(absl::string_view(value)) {}
  LogField(absl::string_view key, const std::string& value)
      : key_(key), value_(absl::string_view(value)) {}

  absl::string_view key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  absl::string_view key_;
  Value value_;
};

using LogFields = std::initializer_list<LogField>;

// Logs event `event` (a snake_case name from docs/operations.md#logs) through spdlog's
// default logger. In text mode the line reads `message`, or when it is empty
// "<event>: key=value key=\"quoted value\"..."; in json mode the object carries `message` (or
// that same text) as msg, then "event" and every field. Events are rare (a circuit opening,
// a table applied): this allocates, so it must not run for every request.
//
//   LogEvent(spdlog::level::warn, "circuit_changed",
//            {{"backend", id}, {"from", "closed"}, {"to", "open"}, {"open_ms", 1000}});
void LogEvent(spdlog::level::level_enum level, absl::string_view event, LogFields fields,
              absl::string_view message = {});

// For lines that go to stdout bare (no time or level) in text mode because scripts and tests
// read them, like "spillway-agent listening on 127.0.0.1:8080 (...)": printed as `message`
// in text mode, an info LogEvent in json mode.
void PrintEvent(absl::string_view event, LogFields fields, absl::string_view message);

// The line DieWithReason writes to stderr: "<program>: <reason>" in text mode, a critical
// JSON line (msg = reason) in json mode.
std::string FatalLine(absl::string_view program, absl::string_view reason);

// The text rendering of an event without a message: "<event>: key=value ...".
std::string EventText(absl::string_view event, LogFields fields);

}  // namespace spillway
