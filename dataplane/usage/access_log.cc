// See access_log.h.
#include "dataplane/usage/access_log.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spillway {
namespace {

constexpr absl::Duration kFlushInterval = absl::Milliseconds(100);

// A field cut to AccessLog::kMaxField bytes, at a UTF-8 character boundary.
absl::string_view Cut(absl::string_view text) {
  if (text.size() > AccessLog::kMaxField) {
    std::size_t cut = AccessLog::kMaxField;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    text = text.substr(0, cut);
  }
  return text;
}

// Names are validated identifiers and need no escaping; error texts may quote input.
bool NeedsEscape(absl::string_view text) {
  for (const char c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

// Writes one line into room made for it up front: a copy per piece, no capacity check per
// append (the line was ~25 appends and 2.7k instructions a request, callgrind).
class LineWriter {
 public:
  // `room`: at least what the line takes.
  LineWriter(std::string& out, std::size_t room) : out_(out) {
    const std::size_t start = out.size();
    out.resize(start + room);
    at_ = out.data() + start;
  }
  ~LineWriter() { out_.resize(static_cast<std::size_t>(at_ - out_.data())); }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  void Raw(absl::string_view text) {
    if (!text.empty()) {  // an empty view may have no data: memcpy from null is undefined
      std::memcpy(at_, text.data(), text.size());
      at_ += text.size();
    }
  }
  void Int(int64_t value) { at_ = std::to_chars(at_, at_ + kIntRoom, value).ptr; }
  // Three digits, zero-padded: milliseconds.
  void Millis(int64_t value) {
    *at_++ = static_cast<char>('0' + value / 100);
    *at_++ = static_cast<char>('0' + value / 10 % 10);
    *at_++ = static_cast<char>('0' + value % 10);
  }
  // A JSON string; `escape` from NeedsEscape.
  void String(absl::string_view text, bool escape) {
    if (escape) {
      Raw(boost::json::serialize(boost::json::string_view(text.data(), text.size())));
      return;
    }
    *at_++ = '"';
    Raw(text);
    *at_++ = '"';
  }

  static constexpr std::size_t kIntRoom = 20;
  // Room for a string: a JSON escape is at most 6 bytes ("\u001f") a byte.
  static std::size_t StringRoom(absl::string_view text, bool escape) {
    return (escape ? 6 : 1) * text.size() + 2;
  }

 private:
  std::string& out_;
  char* at_;
};

// RFC 3339 UTC with milliseconds; the calendar part is formatted once per second per thread.
void WriteTimestamp(LineWriter& line) {
  thread_local int64_t cached_second = -1;
  thread_local std::string cached;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const int64_t second = now_ms / 1000;
  if (second != cached_second) {
    cached = absl::FormatTime("\"%Y-%m-%dT%H:%M:%S.", absl::FromUnixSeconds(second),
                              absl::UTCTimeZone());
    cached_second = second;
  }
  line.Raw(cached);
  line.Millis(now_ms % 1000);
  line.Raw("Z\"");
}

constexpr std::size_t kTimestampRoom = 32;
// Every fixed part of a line: keys, punctuation, true/false.
constexpr std::size_t kFixedRoom = 320;

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
  const int64_t latency_us = std::max<int64_t>(0, std::llround(r.latency_ms * 1000));
  absl::MutexLock lock(&buffer.mu);
  std::string& out = buffer.lines;
  if (out.size() >= max_buffered_) {
    ++buffer.dropped;
    return;
  }
  struct Field {
    absl::string_view text;
    bool escape;
  };
  const bool pinned = !r.pinned_object.empty();
  Field fields[] = {{Cut(r.method), false},        {Cut(r.route), false},    {Cut(r.tenant), false},
                    {Cut(r.backend), false},       {Cut(r.region), false},   {Cut(r.error), false},
                    {Cut(r.pinned_object), false}, {Cut(r.routed_by), false}};
  std::size_t room = kFixedRoom + kTimestampRoom + 8 * LineWriter::kIntRoom;
  for (Field& field : fields) {
    field.escape = NeedsEscape(field.text);
    room += LineWriter::StringRoom(field.text, field.escape);
  }
  LineWriter line(out, room);
  auto string = [&line](const Field& field) { line.String(field.text, field.escape); };
  line.Raw(R"({"ts":)");
  WriteTimestamp(line);
  line.Raw(R"(,"method":)");
  string(fields[0]);
  line.Raw(R"(,"route":)");
  string(fields[1]);
  line.Raw(R"(,"tenant":)");
  string(fields[2]);
  line.Raw(R"(,"backend":)");
  string(fields[3]);
  line.Raw(R"(,"region":)");
  string(fields[4]);
  line.Raw(R"(,"status":)");
  line.Int(r.status);
  line.Raw(R"(,"attempts":)");
  line.Int(r.attempts);
  line.Raw(R"(,"latency_ms":)");
  line.Int(latency_us / 1000);
  line.Raw(".");
  line.Millis(latency_us % 1000);
  line.Raw(r.stream ? R"(,"stream":true)" : R"(,"stream":false)");
  line.Raw(R"(,"prompt_tokens":)");
  line.Int(r.usage.prompt_tokens);
  line.Raw(R"(,"completion_tokens":)");
  line.Int(r.usage.completion_tokens);
  line.Raw(R"(,"total_tokens":)");
  line.Int(r.usage.total_tokens);
  line.Raw(R"(,"cached_tokens":)");
  line.Int(r.usage.cached_tokens);
  line.Raw(R"(,"error":)");
  string(fields[5]);
  if (pinned) {
    line.Raw(R"(,"pinned_object":)");
    string(fields[6]);
    line.Raw(R"(,"routed_by":)");
    string(fields[7]);
  }
  line.Raw("}\n");
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
      LineWriter line(writing_, kFixedRoom + kTimestampRoom + LineWriter::kIntRoom);
      line.Raw(R"({"ts":)");
      WriteTimestamp(line);
      line.Raw(R"(,"dropped_lines":)");
      line.Int(static_cast<int64_t>(std::min<uint64_t>(dropped, INT64_MAX)));
      line.Raw("}\n");
    }
    // A full disk loses lines rather than stalling requests; there is nowhere to report it.
    WriteAll(fd_, writing_);
  }
}

}  // namespace spillway
