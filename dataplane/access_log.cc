// See access_log.h.
#include "dataplane/access_log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway {
namespace {

std::string Quoted(absl::string_view text) {
  return boost::json::serialize(boost::json::string_view(text.data(), text.size()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& destination) {
  if (destination == "off") {
    return std::unique_ptr<AccessLog>(new AccessLog(nullptr));
  }
  try {
    spdlog::init_thread_pool(8192, 1);
    std::shared_ptr<spdlog::logger> logger;
    if (destination == "-") {
      logger = spdlog::create_async<spdlog::sinks::stdout_sink_mt>("access");
    } else {
      logger = spdlog::create_async<spdlog::sinks::basic_file_sink_mt>("access", destination);
    }
    logger->set_pattern("%v");
    logger->flush_on(spdlog::level::info);
    return std::unique_ptr<AccessLog>(new AccessLog(std::move(logger)));
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open access log ", destination, ": ", e.what()));
  }
}

void AccessLog::Write(const AccessRecord& r) {
  if (logger_ == nullptr) {
    return;
  }
  logger_->info(absl::StrFormat(
      R"({"ts":%s,"method":%s,"route":%s,"tenant":%s,"backend":%s,"region":%s,"status":%u,)"
      R"("attempts":%d,"latency_ms":%.3f,"stream":%s,"prompt_tokens":%d,)"
      R"("completion_tokens":%d,"total_tokens":%d,"cached_tokens":%d,"error":%s})",
      Quoted(absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone())),
      Quoted(r.method), Quoted(r.route), Quoted(r.tenant), Quoted(r.backend), Quoted(r.region),
      r.status, r.attempts, r.latency_ms, r.stream ? "true" : "false", r.usage.prompt_tokens,
      r.usage.completion_tokens, r.usage.total_tokens, r.usage.cached_tokens, Quoted(r.error)));
}

}  // namespace spillway
