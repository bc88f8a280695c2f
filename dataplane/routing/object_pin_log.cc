// See object_pin_log.h. Every write that must survive a crash is synced before it counts:
// appends with fdatasync, a rewrite with fsync, its rename with a sync of the directory.
#include "dataplane/routing/object_pin_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace spillway {
namespace object_pins_internal {
namespace {

constexpr std::size_t kReadChunk = 1 << 20;
constexpr std::size_t kWriteChunk = 1 << 20;  // a rewrite writes at least this much at once

std::string TempPathOf(const std::string& path) { return absl::StrCat(path, ".tmp"); }

absl::Status WriteAll(int fd, absl::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError("write", path);
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return absl::OkStatus();
}

// A renamed or created file's name is durable only once its directory is synced.
absl::Status SyncDirectoryOf(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError("open directory", dir);
  }
  absl::Status status = ::fsync(fd) == 0 ? absl::OkStatus() : ErrnoError("sync directory", dir);
  ::close(fd);
  return status;
}

// Sequential reads of the log in large chunks, so a replay needs no copy of the whole file.
class LogReader {
 public:
  LogReader(int fd, const std::string& path) : fd_(fd), path_(path) {}

  // Makes the next `n` bytes available at data(); false when the file ends first.
  absl::StatusOr<bool> Want(std::size_t n) {
    while (buffer_.size() - pos_ < n) {
      if (eof_) {
        return false;
      }
      buffer_.erase(0, pos_);
      pos_ = 0;
      const std::size_t have = buffer_.size();
      buffer_.resize(have + std::max(n, kReadChunk));
      const ssize_t got = ::read(fd_, buffer_.data() + have, buffer_.size() - have);
      if (got < 0 && errno != EINTR) {
        return ErrnoError("read", path_);
      }
      buffer_.resize(have + static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
      eof_ = got == 0;
    }
    return true;
  }
  const char* data() const { return buffer_.data() + pos_; }
  std::size_t available() const { return buffer_.size() - pos_; }
  void Consume(std::size_t n) {
    pos_ += n;
    consumed_ += n;
  }
  uint64_t consumed() const { return consumed_; }

 private:
  const int fd_;
  const std::string& path_;
  std::string buffer_;
  std::size_t pos_ = 0;
  uint64_t consumed_ = 0;
  bool eof_ = false;
};

// Checks the header and consumes it; false when the file ends within it.
absl::StatusOr<bool> ReadHeader(LogReader& reader, const std::string& path) {
  absl::StatusOr<bool> complete = reader.Want(kPinLogHeader.size());
  if (!complete.ok()) {
    return complete.status();
  }
  const std::size_t header_bytes = std::min(reader.available(), kPinLogHeader.size());
  if (std::memcmp(reader.data(), kPinLogHeader.data(), header_bytes) != 0) {
    return absl::DataLossError(
        absl::StrCat(path, " is not an object pin log (its header is not SPWPINS 1)"));
  }
  if (*complete) {
    reader.Consume(kPinLogHeader.size());
  }
  return complete;
}

// A string record joins `strings`; a pin or unpin goes to `apply`. False when the record does
// not fit the log before it.
bool ApplyRecord(const PinLogRecord& record, PinStrings& strings,
                 absl::FunctionRef<void(const PinLogRecord&)> apply) {
  switch (record.type) {
    case PinLogRecord::Type::kString: {
      // Indexes are defined in order, so the log's indexes are this process's too.
      const std::optional<uint32_t> interned = strings.Intern(record.text);
      return interned.has_value() && *interned == record.string_index;
    }
    case PinLogRecord::Type::kPin:
      if (record.slot.backend >= strings.size() || record.slot.tenant >= strings.size()) {
        return false;
      }
      break;
    case PinLogRecord::Type::kUnpin:
      break;
  }
  apply(record);
  return true;
}

// Applies the record at the reader's position and consumes it. Otherwise says why the replay
// stops there: an empty reason means the record was applied.
absl::StatusOr<absl::string_view> ReplayRecord(LogReader& reader, PinStrings& strings,
                                               absl::FunctionRef<void(const PinLogRecord&)> apply) {
  absl::StatusOr<bool> complete = reader.Want(kRecordHeaderBytes);
  if (!complete.ok()) {
    return complete.status();
  }
  if (!*complete) {
    return "an incomplete record header";
  }
  const std::size_t record_bytes = RecordBytes(reader.data());
  if (complete = reader.Want(record_bytes); !complete.ok()) {
    return complete.status();
  }
  if (!*complete) {
    return "an incomplete record";
  }
  const absl::string_view record(reader.data(), record_bytes);
  if (!RecordIntact(record)) {
    return "a checksum mismatch";
  }
  const std::optional<PinLogRecord> decoded = DecodeRecord(record);
  if (!decoded.has_value() || !ApplyRecord(*decoded, strings, apply)) {
    return "a record of unknown type or layout";
  }
  reader.Consume(record_bytes);
  return absl::string_view();
}

}  // namespace

PinLogRewrite::PinLogRewrite(std::string log_path, int fd)
    : log_path_(std::move(log_path)),
      temp_path_(TempPathOf(log_path_)),
      fd_(fd),
      buffer_(kPinLogHeader.data(), kPinLogHeader.size()) {}

PinLogRewrite::~PinLogRewrite() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

void PinLogRewrite::AddPin(const PinKey& key, const PinSlot& slot) {
  const auto record = EncodePinRecord(key, slot);
  buffer_.append(record.data(), record.size());
}

absl::Status PinLogRewrite::WriteIfFull() {
  return buffer_.size() >= kWriteChunk ? WriteBuffer() : absl::OkStatus();
}

absl::Status PinLogRewrite::WriteBuffer() {
  absl::Status status = WriteAll(fd_, buffer_, temp_path_);
  written_ += buffer_.size();
  buffer_.clear();
  return status;
}

absl::Status PinLogRewrite::Finish() {
  if (absl::Status status = WriteBuffer(); !status.ok()) {
    return status;
  }
  if (::fsync(fd_) != 0) {
    return ErrnoError("fsync", temp_path_);
  }
  if (::rename(temp_path_.c_str(), log_path_.c_str()) != 0) {
    return ErrnoError("rename to", log_path_);
  }
  return SyncDirectoryOf(log_path_);
}

PinLog::PinLog(std::string path) : path_(std::move(path)) {}

absl::Status PinLog::Open() {
  ::unlink(TempPathOf(path_).c_str());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return ErrnoError("open", path_);
  }
  return absl::OkStatus();
}

absl::StatusOr<PinLogReplay> PinLog::Replay(PinStrings& strings,
                                            absl::FunctionRef<void(const PinLogRecord&)> apply) {
  absl::StatusOr<PinLogReplay> replay = Read(strings, apply);
  if (!replay.ok()) {
    return replay.status();
  }
  strings_.count = strings.size();
  bytes_.store(replay->good_bytes);
  if (replay->good_bytes == 0) {
    if (absl::Status status = Start(); !status.ok()) {
      return status;
    }
  } else if (replay->good_bytes < replay->file_bytes) {
    spdlog::warn(
        "{}: ignoring the last {} bytes from byte {} ({}; a write cut short by a "
        "crash, or damage); {} records before them were loaded",
        path_, replay->file_bytes - replay->good_bytes, replay->good_bytes, replay->stop_reason,
        replay->records);
    if (::ftruncate(fd_, static_cast<off_t>(replay->good_bytes)) != 0 || ::fsync(fd_) != 0) {
      return ErrnoError("truncate", path_);
    }
  }
  return replay;
}

absl::StatusOr<PinLogReplay> PinLog::Read(
    PinStrings& strings, absl::FunctionRef<void(const PinLogRecord&)> apply) const {
  PinLogReplay result;
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    return ErrnoError("stat", path_);
  }
  result.file_bytes = static_cast<uint64_t>(info.st_size);
  LogReader reader(fd_, path_);
  absl::StatusOr<bool> header = ReadHeader(reader, path_);
  if (!header.ok()) {
    return header.status();
  }
  if (!*header) {
    return result;  // a header cut short: nothing was ever logged
  }
  while (true) {
    absl::StatusOr<absl::string_view> stop = ReplayRecord(reader, strings, apply);
    if (!stop.ok()) {
      return stop.status();
    }
    if (!stop->empty()) {
      result.stop_reason = std::string(*stop);
      break;
    }
    ++result.records;
  }
  result.good_bytes = reader.consumed();
  if (result.good_bytes == result.file_bytes) {
    result.stop_reason.clear();  // the end of the log, not a bad record
  }
  return result;
}

absl::Status PinLog::Start() {
  if (::ftruncate(fd_, 0) != 0) {
    return ErrnoError("truncate", path_);
  }
  if (absl::Status status = Write(absl::string_view(kPinLogHeader.data(), kPinLogHeader.size()));
      !status.ok()) {
    return status;
  }
  if (::fsync(fd_) != 0) {
    return ErrnoError("fsync", path_);
  }
  return SyncDirectoryOf(path_);
}

absl::Status PinLog::Append(const PinStrings& strings, absl::string_view records) {
  std::string defined;
  strings_.AppendNew(strings, &defined);
  if (records.empty() && defined.empty()) {
    return absl::OkStatus();
  }
  if (absl::Status status = Write(defined); !status.ok()) {
    return status;
  }
  if (absl::Status status = Write(records); !status.ok()) {
    return status;
  }
  // fdatasync also syncs the file's new size, which is all an append changes.
  if (::fdatasync(fd_) != 0) {
    return ErrnoError("fsync", path_);
  }
  return absl::OkStatus();
}

absl::Status PinLog::Write(absl::string_view bytes) {
  if (absl::Status status = WriteAll(fd_, bytes, path_); !status.ok()) {
    return status;
  }
  bytes_.fetch_add(bytes.size());
  return absl::OkStatus();
}

bool PinLog::CompactionDue(std::size_t pins, uint64_t min_bytes) const {
  const uint64_t live = kPinLogHeader.size() + strings_.record_bytes + pins * kPinRecordBytes;
  const uint64_t file_bytes = bytes_.load();
  return file_bytes > min_bytes && file_bytes > 2 * live;
}

absl::StatusOr<std::unique_ptr<PinLogRewrite>> PinLog::StartRewrite() const {
  const std::string temp = TempPathOf(path_);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoError("create", temp);
  }
  return std::unique_ptr<PinLogRewrite>(new PinLogRewrite(path_, fd));
}

absl::Status PinLog::Replace(std::unique_ptr<PinLogRewrite> rewrite) {
  if (absl::Status status = rewrite->Finish(); !status.ok()) {
    return status;
  }
  Close();
  fd_ = std::exchange(rewrite->fd_, -1);
  strings_ = rewrite->strings_;
  spdlog::info("{}: compacted from {} to {} bytes", path_, bytes_.load(), rewrite->written_);
  bytes_.store(rewrite->written_);
  return absl::OkStatus();
}

void PinLog::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace object_pins_internal
}  // namespace spillway
