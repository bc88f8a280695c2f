// See access_log.h.
#include "dataplane/usage/access_log.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway {
namespace {

constexpr absl::Duration kFlushInterval = absl::Milliseconds(100);

// Names are validated identifiers and need no escaping; error texts may quote input. Cut to
// AccessLog::kMaxField bytes, at a UTF-8 character boundary.
void AppendJsonString(std::string& out, absl::string_view text) {
  if (text.size() > AccessLog::kMaxField) {
    std::size_t cut = AccessLog::kMaxField;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    text = text.substr(0, cut);
  }
  for (const char c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      out += boost::json::serialize(boost::json::string_view(text.data(), text.size()));
      return;
    }
  }
  out += '"';
  out.append(text.data(), text.size());
  out += '"';
}

// RFC 3339 UTC with milliseconds; the calendar part is formatted once per second per thread.
void AppendTimestamp(std::string& out) {
  thread_local int64_t cached_second = -1;
  thread_local std::string cached;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const int64_t second = now_ms / 1000;
  if (second != cached_second) {
    cached = absl::FormatTime("\"%Y-%m-%dT%H:%M:%S.", absl::FromUnixSeconds(second),
                              absl::UTCTimeZone());
    cached_second = second;
  }
  absl::StrAppend(&out, cached, absl::Dec(now_ms % 1000, absl::kZeroPad3), "Z\"");
}

uint64_t NextId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& destination,
                                                           std::size_t max_buffered) {
  if (destination == "off") {
    return std::unique_ptr<AccessLog>(new AccessLog(-1, false, max_buffered));
  }
  if (destination == "-") {
    return std::unique_ptr<AccessLog>(new AccessLog(STDOUT_FILENO, false, max_buffered));
  }
  const int fd = ::open(destination.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open access log ", destination, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<AccessLog>(new AccessLog(fd, true, max_buffered));
}

AccessLog::AccessLog(int fd, bool owns_fd, std::size_t max_buffered)
    : id_(NextId()), fd_(fd), owns_fd_(owns_fd), max_buffered_(max_buffered) {
  if (fd_ >= 0) {
    writer_ = std::thread([this] { FlushLoop(); });
  }
}

AccessLog::~AccessLog() {
  if (writer_.joinable()) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    writer_.join();
  }
  if (owns_fd_) {
    ::close(fd_);
  }
}

AccessLog::ThreadBuffer& AccessLog::LocalBuffer() {
  // By id, not address: a log opened where a closed one lived must not find its buffer.
  thread_local uint64_t owner = 0;
  thread_local ThreadBuffer* buffer = nullptr;
  if (owner != id_) {
    absl::MutexLock lock(&mu_);
    buffers_.push_back(std::make_unique<ThreadBuffer>());
    buffer = buffers_.back().get();
    owner = id_;
  }
  return *buffer;
}

void AccessLog::Write(const AccessRecord& r) {
  if (fd_ < 0) {
    return;
  }
  ThreadBuffer& buffer = LocalBuffer();
  const int64_t latency_us = std::llround(r.latency_ms * 1000);
  absl::MutexLock lock(&buffer.mu);
  std::string& out = buffer.lines;
  if (out.size() >= max_buffered_) {
    ++buffer.dropped;
    return;
  }
  out += R"({"ts":)";
  AppendTimestamp(out);
  out += R"(,"method":)";
  AppendJsonString(out, r.method);
  out += R"(,"route":)";
  AppendJsonString(out, r.route);
  out += R"(,"tenant":)";
  AppendJsonString(out, r.tenant);
  out += R"(,"backend":)";
  AppendJsonString(out, r.backend);
  out += R"(,"region":)";
  AppendJsonString(out, r.region);
  absl::StrAppend(
      &out, R"(,"status":)", r.status, R"(,"attempts":)", r.attempts, R"(,"latency_ms":)",
      latency_us / 1000, ".", absl::Dec(latency_us % 1000, absl::kZeroPad3), R"(,"stream":)",
      r.stream ? "true" : "false", R"(,"prompt_tokens":)", r.usage.prompt_tokens,
      R"(,"completion_tokens":)", r.usage.completion_tokens, R"(,"total_tokens":)",
      r.usage.total_tokens, R"(,"cached_tokens":)", r.usage.cached_tokens, R"(,"error":)");
  AppendJsonString(out, r.error);
  if (!r.pinned_object.empty()) {
    out += R"(,"pinned_object":)";
    AppendJsonString(out, r.pinned_object);
    out += R"(,"routed_by":)";
    AppendJsonString(out, r.routed_by);
  }
  out += "}\n";
}

void AccessLog::FlushLoop() {
  // Background work: at 256 connections its flushes (hundreds of KB every 100 ms) took a core
  // from the I/O threads at the worst moments and lifted their p99. Linux nices threads one
  // by one; failing to is harmless.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  for (;;) {
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), kFlushInterval);
      stopping = stopping_;
    }
    Flush();
    if (stopping) {
      return;
    }
  }
}

void AccessLog::Flush() {
  std::vector<ThreadBuffer*> buffers;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& buffer : buffers_) {
      buffers.push_back(buffer.get());
    }
  }
  for (ThreadBuffer* buffer : buffers) {
    writing_.clear();
    uint64_t dropped = 0;
    {
      absl::MutexLock lock(&buffer->mu);
      writing_.swap(buffer->lines);
      std::swap(dropped, buffer->dropped);
    }
    if (dropped > 0) {
      writing_ += R"({"ts":)";
      AppendTimestamp(writing_);
      absl::StrAppend(&writing_, R"(,"dropped_lines":)", dropped, "}\n");
    }
    // A full disk loses lines rather than stalling requests; there is nowhere to report it.
    WriteAll(fd_, writing_);
  }
}

}  // namespace spillway
