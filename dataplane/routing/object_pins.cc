// See object_pins.h. Request threads touch one shard lock and, for Pin, the string table;
// only the writer thread (or Flush) does I/O, under write_mu_.
#include "dataplane/routing/object_pins.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace spillway {
namespace object_pins_internal {

struct PinKey {
  uint64_t hi = 0;  // its top bits pick the shard
  uint64_t lo = 0;  // hashes within the shard
  bool operator==(const PinKey&) const = default;
};

struct PinKeyHash {
  // The key is already a uniform hash (SHA-256 bits independent of the shard's).
  std::size_t operator()(const PinKey& key) const { return key.lo; }
};

struct PinSlot {
  uint32_t backend = 0;  // PinStrings indexes
  uint32_t tenant = 0;
  int64_t expires_unix_s = 0;
};

// The memory bound rests on this: 1,000,000 pins in 64 half-full maps of 32,768 slots.
static_assert(sizeof(std::pair<const PinKey, PinSlot>) == 32);

using PinMap = absl::flat_hash_map<PinKey, PinSlot, PinKeyHash>;

// Its own cache line, so threads on different shards never share one.
struct alignas(64) PinShard {
  mutable absl::Mutex mu;
  PinMap pins ABSL_GUARDED_BY(mu);
  std::string pending ABSL_GUARDED_BY(mu);  // log records in the order they were applied
};

// Interned backend ids and tenant names. Find reads them on every I/O thread without a lock:
// strings live in fixed-size chunks that never move once published.
class PinStrings {
 public:
  static constexpr std::size_t kMaxStrings = 1 << 16;
  static constexpr std::size_t kMaxBytes = 1024;

  ~PinStrings() {
    for (std::atomic<std::string*>& chunk : chunks_) {
      delete[] chunk.load(std::memory_order_relaxed);
    }
  }

  // The index of `text`, added if new; nullopt when it is too long or the table is full.
  std::optional<uint32_t> Intern(absl::string_view text) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = index_.find(text); it != index_.end()) {
        return it->second;
      }
    }
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(text); it != index_.end()) {
      return it->second;
    }
    const std::size_t index = size_.load(std::memory_order_relaxed);
    if (text.size() > kMaxBytes || index >= kMaxStrings) {
      return std::nullopt;
    }
    std::atomic<std::string*>& chunk = chunks_[index / kChunk];
    if (chunk.load(std::memory_order_relaxed) == nullptr) {
      chunk.store(new std::string[kChunk], std::memory_order_release);
    }
    chunk.load(std::memory_order_relaxed)[index % kChunk] = std::string(text);
    index_.emplace(std::string(text), static_cast<uint32_t>(index));
    text_bytes_ += text.size();
    size_.store(index + 1, std::memory_order_release);
    return static_cast<uint32_t>(index);
  }

  // `index` must have come from Intern, or be below a size() this thread read.
  const std::string& Get(uint32_t index) const {
    return chunks_[index / kChunk].load(std::memory_order_acquire)[index % kChunk];
  }

  std::size_t size() const { return size_.load(std::memory_order_acquire); }

  std::size_t MemoryBytes() const {
    absl::ReaderMutexLock lock(&mu_);
    const std::size_t chunks = (size_.load(std::memory_order_relaxed) + kChunk - 1) / kChunk;
    // Each string is held twice (chunk and index); SSO hides short ones, so count text twice.
    return sizeof(*this) + chunks * kChunk * sizeof(std::string) +
           index_.capacity() * (sizeof(std::pair<std::string, uint32_t>) + 1) + 2 * text_bytes_;
  }

 private:
  static constexpr std::size_t kChunk = 256;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> index_ ABSL_GUARDED_BY(mu_);
  std::size_t text_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<std::atomic<std::string*>, kMaxStrings / kChunk> chunks_{};
  std::atomic<std::size_t> size_{0};
};

struct ReplayResult {
  uint64_t file_bytes = 0;
  uint64_t good_bytes = 0;  // the header and every complete, valid record
  uint64_t records = 0;
  std::string stop_reason;  // why the replay stopped before the end of the file
};

}  // namespace object_pins_internal

namespace {

using object_pins_internal::PinKey;
using object_pins_internal::PinMap;
using object_pins_internal::PinShard;
using object_pins_internal::PinSlot;
using object_pins_internal::PinStrings;
using object_pins_internal::ReplayResult;

constexpr std::size_t kShards = 64;
constexpr int kShardShift = 64 - 6;  // 2^6 == kShards

// The log's layout: see object_pins.h.
constexpr std::array<char, 8> kMagic = {'S', 'P', 'W', 'P', 'I', 'N', 'S', '\x01'};
constexpr std::size_t kRecordHeaderBytes = 6;  // u32 crc, u16 body length
constexpr std::size_t kKeyBytes = 16;
constexpr std::size_t kPinFieldBytes = kKeyBytes + 4 + 4 + 8;
constexpr std::size_t kPinRecordBytes = kRecordHeaderBytes + 1 + kPinFieldBytes;
constexpr std::size_t kUnpinRecordBytes = kRecordHeaderBytes + 1 + kKeyBytes;
enum RecordType : uint8_t { kPinRecord = 1, kUnpinRecord = 2, kStringRecord = 3 };

constexpr std::size_t kReadChunk = 1 << 20;
constexpr std::size_t kWriteChunk = 1 << 20;  // compaction writes at least this much at once

void Put16(char* out, uint16_t value) {
  for (int i = 0; i < 2; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
void Put32(char* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
void Put64(char* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
uint64_t GetLittleEndian(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  }
  return value;
}

// The log stores the key as the digest's own bytes, the same in every process.
void PutKey(char* out, const PinKey& key) {
  std::memcpy(out, &key.hi, 8);
  std::memcpy(out + 8, &key.lo, 8);
}
PinKey GetKey(const char* in) {
  PinKey key;
  std::memcpy(&key.hi, in, 8);
  std::memcpy(&key.lo, in + 8, 8);
  return key;
}

// OpenSSL 3's one-shot SHA256() fetches the algorithm under a lock and allocates a context
// on every call; each thread keeps one context and the algorithm is fetched once.
std::optional<PinKey> KeyOf(absl::string_view object_id) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int size = 0;
  if (kSha256 == nullptr || context == nullptr ||
      EVP_DigestInit_ex2(context.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), object_id.data(), object_id.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &size) != 1) {
    return std::nullopt;  // unreachable with a working libcrypto; never a shared key
  }
  return GetKey(reinterpret_cast<const char*>(digest));
}

uint32_t Crc32(const char* data, std::size_t size) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

// Fills in the length and checksum of a record whose body is already at record + 6.
void SealRecord(char* record, std::size_t body_bytes) {
  Put16(record + 4, static_cast<uint16_t>(body_bytes));
  Put32(record, Crc32(record + 4, 2 + body_bytes));
}

std::array<char, kPinRecordBytes> PinRecord(const PinKey& key, const PinSlot& slot) {
  std::array<char, kPinRecordBytes> record;
  char* body = record.data() + kRecordHeaderBytes;
  body[0] = static_cast<char>(kPinRecord);
  PutKey(body + 1, key);
  Put32(body + 1 + kKeyBytes, slot.backend);
  Put32(body + 1 + kKeyBytes + 4, slot.tenant);
  Put64(body + 1 + kKeyBytes + 8, static_cast<uint64_t>(slot.expires_unix_s));
  SealRecord(record.data(), kPinRecordBytes - kRecordHeaderBytes);
  return record;
}

std::array<char, kUnpinRecordBytes> UnpinRecord(const PinKey& key) {
  std::array<char, kUnpinRecordBytes> record;
  record[kRecordHeaderBytes] = static_cast<char>(kUnpinRecord);
  PutKey(record.data() + kRecordHeaderBytes + 1, key);
  SealRecord(record.data(), kUnpinRecordBytes - kRecordHeaderBytes);
  return record;
}

void AppendStringRecord(std::string* out, uint32_t index, absl::string_view text) {
  const std::size_t start = out->size();
  const std::size_t body_bytes = 1 + 4 + text.size();
  out->resize(start + kRecordHeaderBytes + body_bytes);
  char* record = out->data() + start;
  record[kRecordHeaderBytes] = static_cast<char>(kStringRecord);
  Put32(record + kRecordHeaderBytes + 1, index);
  std::memcpy(record + kRecordHeaderBytes + 5, text.data(), text.size());
  SealRecord(record, body_bytes);
}

// String records for indexes [from, to); returns their size.
uint64_t AppendStringRecords(const PinStrings& strings, std::size_t from, std::size_t to,
                             std::string* out) {
  const std::size_t before = out->size();
  for (std::size_t index = from; index < to; ++index) {
    AppendStringRecord(out, static_cast<uint32_t>(index),
                       strings.Get(static_cast<uint32_t>(index)));
  }
  return out->size() - before;
}

// Removes expired pins, then the soonest-expiring ones while more than `target` remain.
std::size_t MakeRoom(PinMap& pins, int64_t now, std::size_t target) {
  const std::size_t before = pins.size();
  absl::erase_if(pins, [now](const auto& entry) { return entry.second.expires_unix_s <= now; });
  if (pins.size() > target) {
    std::vector<int64_t> expiries;
    expiries.reserve(pins.size());
    for (const auto& [key, slot] : pins) {
      expiries.push_back(slot.expires_unix_s);
    }
    const std::size_t excess = pins.size() - target;
    std::nth_element(expiries.begin(), expiries.begin() + (excess - 1), expiries.end());
    const int64_t cutoff = expiries[excess - 1];
    // Every pin expiring before the cutoff goes; ties at the cutoff go until enough have.
    std::size_t to_remove = excess - absl::erase_if(pins, [cutoff](const auto& entry) {
                              return entry.second.expires_unix_s < cutoff;
                            });
    for (auto it = pins.begin(); to_remove > 0 && it != pins.end();) {
      if (it->second.expires_unix_s == cutoff) {
        pins.erase(it++);
        --to_remove;
      } else {
        ++it;
      }
    }
  }
  return before - pins.size();
}

// A string as a log line quotes it: the start of one that may be unreasonably long.
std::string Clip(absl::string_view text) {
  constexpr std::size_t kMaxQuoted = 64;
  return text.size() <= kMaxQuoted ? std::string(text)
                                   : absl::StrCat(text.substr(0, kMaxQuoted), "...");
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno),
                      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

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

// Makes the fully written `temp` (open as `fd`) the file at `path`, durably.
absl::Status Install(int fd, const std::string& temp, const std::string& path) {
  if (::fsync(fd) != 0) {
    return ErrnoError("fsync", temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return ErrnoError("rename to", path);
  }
  return SyncDirectoryOf(path);
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
  void Consume(std::size_t n) { pos_ += n; }

 private:
  const int fd_;
  const std::string& path_;
  std::string buffer_;
  std::size_t pos_ = 0;
  bool eof_ = false;
};

}  // namespace

ObjectPins::ObjectPins(ObjectPinsOptions options)
    : options_(std::move(options)),
      shard_capacity_(std::max<std::size_t>(1, (options_.max_pins + kShards - 1) / kShards)),
      shards_(std::make_unique<PinShard[]>(kShards)),
      strings_(std::make_unique<PinStrings>()) {}

ObjectPins::~ObjectPins() {
  if (absl::Status status = Close(); !status.ok()) {
    spdlog::error("object pins: {}", std::string(status.message()));
  }
}

absl::StatusOr<std::unique_ptr<ObjectPins>> ObjectPins::Open(ObjectPinsOptions options) {
  std::unique_ptr<ObjectPins> pins(new ObjectPins(std::move(options)));
  if (pins->options_.path.empty()) {
    return pins;
  }
  {
    absl::MutexLock lock(&pins->write_mu_);
    if (absl::Status status = pins->Load(); !status.ok()) {
      return status;
    }
  }
  pins->logging_.store(true);
  pins->writer_ = std::thread([raw = pins.get()] { raw->RunWriter(); });
  return pins;
}

int64_t ObjectPins::Now() const {
  return options_.now_unix_s ? options_.now_unix_s() : absl::ToUnixSeconds(absl::Now());
}

PinShard& ObjectPins::ShardOf(const PinKey& key) const { return shards_[key.hi >> kShardShift]; }

void ObjectPins::Pin(absl::string_view object_id, const PinOwner& owner) {
  const int64_t now = Now();
  if (owner.expires_unix_s <= now) {
    Unpin(object_id);
    return;
  }
  const std::optional<PinKey> key = KeyOf(object_id);
  const std::optional<uint32_t> backend = strings_->Intern(owner.backend_id);
  // Not interned when the backend id was refused: the table keeps only strings in use.
  const std::optional<uint32_t> tenant =
      backend.has_value() ? strings_->Intern(owner.tenant) : std::nullopt;
  if (!key || !backend || !tenant) {
    if (rejected_.fetch_add(1, std::memory_order_relaxed) == 0) {
      spdlog::warn(
          "object pins: cannot pin {} to {} (tenant \"{}\"): more than {} owner "
          "strings or one longer than {} bytes; such pins are counted, not logged again",
          Clip(object_id), Clip(owner.backend_id), Clip(owner.tenant), PinStrings::kMaxStrings,
          PinStrings::kMaxBytes);
    }
    return;
  }
  PinShard& shard = ShardOf(*key);
  absl::MutexLock lock(&shard.mu);
  InsertLocked(shard, *key, *backend, *tenant, owner.expires_unix_s, now);
  const auto record = PinRecord(*key, PinSlot{*backend, *tenant, owner.expires_unix_s});
  LogLocked(shard, absl::string_view(record.data(), record.size()));
}

std::optional<PinOwner> ObjectPins::Find(absl::string_view object_id) const {
  const std::optional<PinKey> key = KeyOf(object_id);
  if (!key) {
    return std::nullopt;
  }
  const PinShard& shard = ShardOf(*key);
  PinSlot slot;
  {
    absl::ReaderMutexLock lock(&shard.mu);
    const auto it = shard.pins.find(*key);
    if (it == shard.pins.end()) {
      return std::nullopt;
    }
    slot = it->second;
  }
  if (slot.expires_unix_s <= Now()) {
    return std::nullopt;
  }
  return PinOwner{strings_->Get(slot.backend), strings_->Get(slot.tenant), slot.expires_unix_s};
}

void ObjectPins::Unpin(absl::string_view object_id) {
  const std::optional<PinKey> key = KeyOf(object_id);
  if (!key) {
    return;
  }
  PinShard& shard = ShardOf(*key);
  absl::MutexLock lock(&shard.mu);
  if (EraseLocked(shard, *key)) {
    const auto record = UnpinRecord(*key);
    LogLocked(shard, absl::string_view(record.data(), record.size()));
  }
}

void ObjectPins::InsertLocked(PinShard& shard, const PinKey& key, uint32_t backend, uint32_t tenant,
                              int64_t expires_unix_s, int64_t now) {
  shard.mu.AssertHeld();
  const PinSlot slot{backend, tenant, expires_unix_s};
  if (auto it = shard.pins.find(key); it != shard.pins.end()) {
    it->second = slot;
    return;
  }
  // Room is made before inserting, so the pin just created is never the one evicted.
  if (shard.pins.size() >= shard_capacity_) {
    const std::size_t target = shard_capacity_ - std::max<std::size_t>(1, shard_capacity_ / 8);
    const std::size_t removed = MakeRoom(shard.pins, now, target);
    pins_.fetch_sub(removed, std::memory_order_relaxed);
    evicted_.fetch_add(removed, std::memory_order_relaxed);
  }
  shard.pins.emplace(key, slot);
  pins_.fetch_add(1, std::memory_order_relaxed);
}

bool ObjectPins::EraseLocked(PinShard& shard, const PinKey& key) {
  shard.mu.AssertHeld();
  if (shard.pins.erase(key) == 0) {
    return false;
  }
  pins_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void ObjectPins::LogLocked(PinShard& shard, absl::string_view record) {
  shard.mu.AssertHeld();
  if (!logging_.load(std::memory_order_relaxed)) {
    return;
  }
  const std::size_t pending =
      pending_bytes_.fetch_add(record.size(), std::memory_order_relaxed) + record.size();
  if (pending > options_.max_pending_bytes) {
    pending_bytes_.fetch_sub(record.size(), std::memory_order_relaxed);
    dropped_writes_.fetch_add(1, std::memory_order_relaxed);
    needs_compaction_.store(true);  // memory stays right; the log catches up by a rewrite
    return;
  }
  shard.pending.append(record.data(), record.size());
}

absl::Status ObjectPins::Load() {
  const std::string& path = options_.path;
  ::unlink(absl::StrCat(path, ".tmp").c_str());  // a compaction cut short: the log is intact
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return ErrnoError("open", path);
  }
  const absl::Time started = absl::Now();
  absl::StatusOr<ReplayResult> replay = Replay();
  if (!replay.ok()) {
    return replay.status();
  }
  loaded_records_ = replay->records;
  load_ignored_bytes_ = replay->file_bytes - replay->good_bytes;
  strings_in_log_ = strings_->size();
  file_bytes_.store(replay->good_bytes);
  if (replay->good_bytes == 0) {
    if (absl::Status status = StartLog(); !status.ok()) {
      return status;
    }
  } else if (load_ignored_bytes_ > 0) {
    spdlog::warn(
        "{}: ignoring the last {} bytes from byte {} ({}; a write cut short by a "
        "crash, or damage); {} records before them were loaded",
        path, load_ignored_bytes_, replay->good_bytes, replay->stop_reason, replay->records);
    // Later records go right after the last good one, where the next replay will find them.
    if (::ftruncate(fd_, static_cast<off_t>(replay->good_bytes)) != 0 || ::fsync(fd_) != 0) {
      return ErrnoError("truncate", path);
    }
  }
  if (CompactionDue()) {
    if (absl::Status status = WriteAndReport(); !status.ok()) {
      spdlog::warn("{}: compaction failed; appending to the log as it is", path);
    }
  }
  spdlog::info("{}: {} object pins loaded from {} records in {} ms", path, size(), replay->records,
               absl::ToInt64Milliseconds(absl::Now() - started));
  return absl::OkStatus();
}

// A new log, or one whose header never reached the disk.
absl::Status ObjectPins::StartLog() {
  if (::ftruncate(fd_, 0) != 0) {
    return ErrnoError("truncate", options_.path);
  }
  if (absl::Status status = AppendToLog(absl::string_view(kMagic.data(), kMagic.size()));
      !status.ok()) {
    return status;
  }
  if (::fsync(fd_) != 0) {
    return ErrnoError("fsync", options_.path);
  }
  return SyncDirectoryOf(options_.path);
}

absl::StatusOr<ReplayResult> ObjectPins::Replay() {
  const std::string& path = options_.path;
  ReplayResult result;
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    return ErrnoError("stat", path);
  }
  result.file_bytes = static_cast<uint64_t>(info.st_size);
  LogReader reader(fd_, path);
  absl::StatusOr<bool> complete = reader.Want(kMagic.size());
  if (!complete.ok()) {
    return complete.status();
  }
  const std::size_t header_bytes = std::min(reader.available(), kMagic.size());
  if (std::memcmp(reader.data(), kMagic.data(), header_bytes) != 0) {
    return absl::DataLossError(
        absl::StrCat(path, " is not an object pin log (its header is not SPWPINS 1)"));
  }
  if (!*complete) {
    return result;  // a header cut short: nothing was ever logged
  }
  reader.Consume(kMagic.size());
  result.good_bytes = kMagic.size();
  const int64_t now = Now();
  while (true) {
    if (complete = reader.Want(kRecordHeaderBytes); !complete.ok()) {
      return complete.status();
    }
    if (!*complete) {
      result.stop_reason = "an incomplete record header";
      break;
    }
    const std::size_t body_bytes = GetLittleEndian(reader.data() + 4, 2);
    if (complete = reader.Want(kRecordHeaderBytes + body_bytes); !complete.ok()) {
      return complete.status();
    }
    if (!*complete) {
      result.stop_reason = "an incomplete record";
      break;
    }
    const char* record = reader.data();
    if (Crc32(record + 4, 2 + body_bytes) != GetLittleEndian(record, 4)) {
      result.stop_reason = "a checksum mismatch";
      break;
    }
    if (!ApplyRecord(absl::string_view(record + kRecordHeaderBytes, body_bytes), now)) {
      result.stop_reason = "a record of unknown type or layout";
      break;
    }
    reader.Consume(kRecordHeaderBytes + body_bytes);
    result.good_bytes += kRecordHeaderBytes + body_bytes;
    ++result.records;
  }
  if (result.good_bytes == result.file_bytes) {
    result.stop_reason.clear();  // the end of the log, not a bad record
  }
  return result;
}

bool ObjectPins::ApplyRecord(absl::string_view body, int64_t now) {
  if (body.empty()) {
    return false;
  }
  const char* fields = body.data() + 1;
  switch (static_cast<uint8_t>(body[0])) {
    case kPinRecord: {
      if (body.size() != 1 + kPinFieldBytes) {
        return false;
      }
      const PinKey key = GetKey(fields);
      const uint64_t backend = GetLittleEndian(fields + kKeyBytes, 4);
      const uint64_t tenant = GetLittleEndian(fields + kKeyBytes + 4, 4);
      const auto expires = static_cast<int64_t>(GetLittleEndian(fields + kKeyBytes + 8, 8));
      if (backend >= strings_->size() || tenant >= strings_->size()) {
        return false;
      }
      PinShard& shard = ShardOf(key);
      absl::MutexLock lock(&shard.mu);
      if (expires <= now) {
        EraseLocked(shard, key);
      } else {
        InsertLocked(shard, key, static_cast<uint32_t>(backend), static_cast<uint32_t>(tenant),
                     expires, now);
      }
      return true;
    }
    case kUnpinRecord: {
      if (body.size() != 1 + kKeyBytes) {
        return false;
      }
      const PinKey key = GetKey(fields);
      PinShard& shard = ShardOf(key);
      absl::MutexLock lock(&shard.mu);
      EraseLocked(shard, key);
      return true;
    }
    case kStringRecord: {
      if (body.size() < 1 + 4) {
        return false;
      }
      // Indexes are defined in order, so the log's indexes are this process's too.
      const uint64_t index = GetLittleEndian(fields, 4);
      const std::optional<uint32_t> interned = strings_->Intern(body.substr(1 + 4));
      return interned.has_value() && *interned == index;
    }
    default:
      return false;
  }
}

void ObjectPins::RunWriter() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.flush_interval)) {
        return;
      }
    }
    absl::MutexLock lock(&write_mu_);
    WriteAndReport().IgnoreError();  // counted and logged; the next round retries
  }
}

absl::Status ObjectPins::Flush() {
  absl::MutexLock lock(&write_mu_);
  return WriteAndReport();
}

absl::Status ObjectPins::Close() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) {
    writer_.join();
  }
  logging_.store(false);
  absl::MutexLock lock(&write_mu_);
  if (fd_ < 0) {
    return absl::OkStatus();
  }
  absl::Status status = WriteAndReport();
  ::close(fd_);
  fd_ = -1;
  return status;
}

absl::Status ObjectPins::WriteAndReport() {
  absl::Status status = WritePending();
  if (!status.ok()) {
    write_errors_.fetch_add(1, std::memory_order_relaxed);
    needs_compaction_.store(true);  // some records may be missing or torn: rewrite the log
    if (status.message() != last_write_error_) {
      spdlog::error("object pins: {}; pins are kept in memory and the log will be rewritten",
                    std::string(status.message()));
      last_write_error_ = std::string(status.message());
    }
  } else if (!last_write_error_.empty()) {
    spdlog::info("object pins: {} is written again", options_.path);
    last_write_error_.clear();
  }
  return status;
}

absl::Status ObjectPins::WritePending() {
  if (fd_ < 0) {
    return absl::OkStatus();
  }
  if (needs_compaction_.load() || CompactionDue()) {
    return Compact();
  }
  std::string records;
  for (std::size_t i = 0; i < kShards; ++i) {
    std::string taken;
    {
      absl::MutexLock lock(&shards_[i].mu);
      taken.swap(shards_[i].pending);
    }
    pending_bytes_.fetch_sub(taken.size(), std::memory_order_relaxed);
    records += taken;
  }
  // Strings are read after the shards, so every string a taken record names is written
  // before it.
  std::string strings;
  const std::size_t interned = strings_->size();
  string_log_bytes_ += AppendStringRecords(*strings_, strings_in_log_, interned, &strings);
  strings_in_log_ = interned;
  if (records.empty() && strings.empty()) {
    return absl::OkStatus();
  }
  if (absl::Status status = AppendToLog(strings); !status.ok()) {
    return status;
  }
  if (absl::Status status = AppendToLog(records); !status.ok()) {
    return status;
  }
  // fdatasync also syncs the file's new size, which is all an append changes.
  if (::fdatasync(fd_) != 0) {
    return ErrnoError("fsync", options_.path);
  }
  return absl::OkStatus();
}

absl::Status ObjectPins::AppendToLog(absl::string_view bytes) {
  if (absl::Status status = WriteAll(fd_, bytes, options_.path); !status.ok()) {
    return status;
  }
  file_bytes_.fetch_add(bytes.size());
  return absl::OkStatus();
}

bool ObjectPins::CompactionDue() const {
  const uint64_t live = kMagic.size() + string_log_bytes_ + size() * kPinRecordBytes;
  const uint64_t file_bytes = file_bytes_.load();
  return file_bytes > options_.compact_min_bytes && file_bytes > 2 * live;
}

void ObjectPins::SnapshotShard(PinShard& shard, int64_t now,
                               std::vector<std::pair<PinKey, PinSlot>>* pins) {
  std::size_t expired = 0;
  {
    absl::MutexLock lock(&shard.mu);
    pending_bytes_.fetch_sub(shard.pending.size(), std::memory_order_relaxed);
    std::string().swap(shard.pending);
    expired = absl::erase_if(
        shard.pins, [now](const auto& entry) { return entry.second.expires_unix_s <= now; });
    pins->assign(shard.pins.begin(), shard.pins.end());
  }
  pins_.fetch_sub(expired, std::memory_order_relaxed);
}

// Rewrites the log from memory, shard by shard, while Pin and Unpin go on: each shard's
// pending records are dropped in the same lock hold that copies its pins, so what the new
// log lacks of a shard is exactly what its pending buffer gets next.
absl::Status ObjectPins::Compact() {
  const std::string& path = options_.path;
  const std::string temp = absl::StrCat(path, ".tmp");
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoError("create", temp);
  }
  // Cleared first: a record dropped while this runs sets it again.
  needs_compaction_.store(false);
  const int64_t now = Now();
  std::string out(kMagic.data(), kMagic.size());
  uint64_t written = 0;
  std::size_t strings_written = 0;
  uint64_t string_bytes = 0;
  absl::Status status;
  std::vector<std::pair<PinKey, PinSlot>> copied;
  for (std::size_t i = 0; i < kShards && status.ok(); ++i) {
    SnapshotShard(shards_[i], now, &copied);
    // Strings after the copy: every index the copied pins name is below this size.
    const std::size_t interned = strings_->size();
    string_bytes += AppendStringRecords(*strings_, strings_written, interned, &out);
    strings_written = interned;
    for (const auto& [key, slot] : copied) {
      const auto record = PinRecord(key, slot);
      out.append(record.data(), record.size());
    }
    if (out.size() >= kWriteChunk || i + 1 == kShards) {
      status = WriteAll(fd, out, temp);
      written += out.size();
      out.clear();
    }
  }
  if (status.ok()) {
    status = Install(fd, temp, path);
  }
  if (!status.ok()) {
    ::close(fd);
    ::unlink(temp.c_str());
    return status;
  }
  ::close(fd_);
  fd_ = fd;
  strings_in_log_ = strings_written;
  string_log_bytes_ = string_bytes;
  spdlog::info("{}: compacted from {} to {} bytes", path, file_bytes_.load(), written);
  file_bytes_.store(written);
  compactions_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

ObjectPinsStats ObjectPins::stats() const {
  ObjectPinsStats stats;
  stats.pins = size();
  stats.pending_bytes = pending_bytes_.load(std::memory_order_relaxed);
  stats.strings = strings_->size();
  stats.file_bytes = file_bytes_.load();
  stats.evicted = evicted_.load(std::memory_order_relaxed);
  stats.dropped_writes = dropped_writes_.load(std::memory_order_relaxed);
  stats.write_errors = write_errors_.load(std::memory_order_relaxed);
  stats.rejected = rejected_.load(std::memory_order_relaxed);
  stats.compactions = compactions_.load(std::memory_order_relaxed);
  stats.loaded_records = loaded_records_;
  stats.load_ignored_bytes = load_ignored_bytes_;
  return stats;
}

std::size_t ObjectPins::MemoryBytes() const {
  // A flat_hash_map holds one slot and one control byte per unit of capacity, plus a group
  // of cloned control bytes.
  constexpr std::size_t kSlotBytes = sizeof(std::pair<const PinKey, PinSlot>) + 1;
  std::size_t bytes = sizeof(*this) + kShards * sizeof(PinShard) + strings_->MemoryBytes();
  for (std::size_t i = 0; i < kShards; ++i) {
    absl::ReaderMutexLock lock(&shards_[i].mu);
    const std::size_t capacity = shards_[i].pins.capacity();
    bytes += capacity == 0 ? 0 : capacity * kSlotBytes + 16;
    bytes += shards_[i].pending.capacity();
  }
  return bytes;
}

}  // namespace spillway
