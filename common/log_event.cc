// See log_event.h. An event's fields reach the JSON formatter through a thread-local: spdlog's
// default logger is synchronous, so the line is formatted on the thread that logs it.
#include "common/log_event.h"

#include <grpc/support/log.h>
#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace spillway {
namespace {

std::atomic<LogFormat> process_format{LogFormat::kText};

// The event being logged on this thread, for the formatter; `payload` tells its line from
// any other the same thread might log meanwhile.
struct PendingEvent {
  absl::string_view event;
  LogFields fields;
  const char* payload;
};
thread_local const PendingEvent* pending_event = nullptr;

// Keys that name the line's own members: a field may not replace them.
bool IsReservedKey(absl::string_view key) {
  return key == "ts" || key == "level" || key == "program" || key == "logger" || key == "msg" ||
         key == "event";
}

// Length of the well-formed UTF-8 sequence at the start of `s`, 0 if it is not one
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t Utf8SequenceLength(absl::string_view s) {
  const auto byte = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) {
    return 1;
  }
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (s.size() < length || byte(1) < low || byte(1) > high) {
    return 0;
  }
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) {
      return 0;
    }
  }
  return length;
}

// `s` with every byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD:
// Boost.JSON escapes, but copies bytes above 0x7F as they are, and a line that is not UTF-8
// would not parse. Backend error text can be anything.
boost::json::string ValidUtf8(absl::string_view s) {
  boost::json::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const std::size_t length = Utf8SequenceLength(s);
    if (length == 0) {
      out.append("\xEF\xBF\xBD");
      s.remove_prefix(1);
      continue;
    }
    out.append(boost::json::string_view(s.data(), length));
    s.remove_prefix(length);
  }
  return out;
}

boost::json::value JsonValue(const LogField::Value& value) {
  return std::visit(
      [](const auto& v) -> boost::json::value {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, absl::string_view>) {
          return ValidUtf8(v);
        } else {
          return boost::json::value(v);
        }
      },
      value);
}

// RFC 3339, UTC, milliseconds: 2026-12-05T10:11:12.345Z.
std::string Timestamp(spdlog::log_clock::time_point time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromChrono(time), absl::UTCTimeZone());
}

absl::string_view View(spdlog::string_view_t s) { return absl::string_view(s.data(), s.size()); }

class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string program) : program_(std::move(program)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    boost::json::object line;
    line["ts"] = Timestamp(msg.time);
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    line["level"] = boost::json::string_view(level.data(), level.size());
    line["program"] = program_;
    if (msg.logger_name.size() > 0) {
      line["logger"] = ValidUtf8(View(msg.logger_name));
    }
    line["msg"] = ValidUtf8(View(msg.payload));
    const PendingEvent* event = pending_event;
    if (event != nullptr && event->payload == msg.payload.data()) {
      line["event"] = ValidUtf8(event->event);
      for (const LogField& field : event->fields) {
        const absl::string_view key = field.key();
        const std::string name = IsReservedKey(key) ? absl::StrCat(key, "_") : std::string(key);
        line[name] = JsonValue(field.value());
      }
    }
    const std::string text = boost::json::serialize(line);
    dest.append(text.data(), text.data() + text.size());
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(program_);
  }

 private:
  const std::string program_;
};

// gRPC's own lines (errors by default), which it would otherwise print to stderr in a format
// of its own.
void LogGrpcLine(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::err;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) {
    level = spdlog::level::debug;
  } else if (args->severity == GPR_LOG_SEVERITY_INFO) {
    level = spdlog::level::info;
  }
  LogEvent(level, "grpc", {{"file", args->file}, {"line", args->line}}, args->message);
}

bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) {
    return true;
  }
  for (const char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ||
        c == 0x7F) {
      return true;
    }
  }
  return false;
}

void AppendTextValue(const LogField::Value& value, std::string& out) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, absl::string_view>) {
          if (NeedsQuotes(v)) {
            absl::StrAppend(&out, "\"", absl::CEscape(v), "\"");
          } else {
            absl::StrAppend(&out, v);
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          absl::StrAppend(&out, v ? "true" : "false");
        } else {
          absl::StrAppend(&out, v);
        }
      },
      value);
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view value) {
  if (value == "text") {
    return LogFormat::kText;
  }
  if (value == "json") {
    return LogFormat::kJson;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--log-format must be 'text' or 'json', got '", value, "'"));
}

void SetUpProcessLog(absl::string_view program, LogFormat format) {
  process_format.store(format, std::memory_order_release);
  if (format == LogFormat::kJson) {
    spdlog::set_formatter(MakeJsonLogFormatter(std::string(program)));
    gpr_set_log_function(LogGrpcLine);
  }
}

LogFormat ProcessLogFormat() { return process_format.load(std::memory_order_acquire); }

std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter(std::string program) {
  return std::make_unique<JsonFormatter>(std::move(program));
}

std::string EventText(absl::string_view event, LogFields fields) {
  std::string text = absl::StrCat(event, ":");
  for (const LogField& field : fields) {
    absl::StrAppend(&text, " ", field.key(), "=");
    AppendTextValue(field.value(), text);
  }
  return text;
}

void LogEvent(spdlog::level::level_enum level, absl::string_view event, LogFields fields,
              absl::string_view message) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  // None after spdlog::shutdown(), when gRPC may still have a line to log.
  if (logger == nullptr || !logger->should_log(level)) {
    return;
  }
  std::string rendered;
  if (message.empty()) {
    rendered = EventText(event, fields);
    message = rendered;
  }
  const PendingEvent pending{event, fields, message.data()};
  const bool json = ProcessLogFormat() == LogFormat::kJson;
  if (json) {
    pending_event = &pending;
  }
  logger->log(level, spdlog::string_view_t(message.data(), message.size()));
  if (json) {
    pending_event = nullptr;
  }
}

void PrintEvent(absl::string_view event, LogFields fields, absl::string_view message) {
  if (ProcessLogFormat() == LogFormat::kJson) {
    LogEvent(spdlog::level::info, event, fields, message);
    return;
  }
  std::fwrite(message.data(), 1, message.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string FatalLine(absl::string_view program, absl::string_view reason) {
  if (ProcessLogFormat() != LogFormat::kJson) {
    return absl::StrCat(program, ": ", reason, "\n");
  }
  const spdlog::details::log_msg msg(spdlog::string_view_t(), spdlog::level::critical,
                                     spdlog::string_view_t(reason.data(), reason.size()));
  spdlog::memory_buf_t line;
  JsonFormatter(std::string(program)).format(msg, line);
  return std::string(line.data(), line.size());
}

}  // namespace spillway
