// See object_pins.h: the sharded map and its bound, and the writer thread that keeps the log.
// Request threads touch one shard lock and, for Pin, the string table; only the writer thread
// (or Flush) does I/O, under write_mu_.
#include "dataplane/routing/object_pins.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "dataplane/routing/object_pin_key.h"
#include "dataplane/routing/object_pin_log.h"
#include "dataplane/routing/object_pin_record.h"
#include "dataplane/routing/object_pin_strings.h"

namespace spillway {
namespace object_pins_internal {

struct PinKeyHash {
  // The key is already a uniform hash (SHA-256 bits independent of the shard's).
  std::size_t operator()(const PinKey& key) const { return key.lo; }
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

}  // namespace object_pins_internal

namespace {

using object_pins_internal::EncodePinRecord;
using object_pins_internal::EncodeUnpinRecord;
using object_pins_internal::PinKey;
using object_pins_internal::PinKeyOf;
using object_pins_internal::PinLog;
using object_pins_internal::PinLogRecord;
using object_pins_internal::PinLogReplay;
using object_pins_internal::PinLogRewrite;
using object_pins_internal::PinMap;
using object_pins_internal::PinShard;
using object_pins_internal::PinSlot;
using object_pins_internal::PinStrings;

constexpr std::size_t kShards = 64;
constexpr int kShardShift = 64 - 6;  // 2^6 == kShards

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

}  // namespace

ObjectPins::ObjectPins(ObjectPinsOptions options)
    : options_(std::move(options)),
      shard_capacity_(std::max<std::size_t>(1, (options_.max_pins + kShards - 1) / kShards)),
      shards_(std::make_unique<PinShard[]>(kShards)),
      strings_(std::make_unique<PinStrings>()),
      log_(std::make_unique<PinLog>(options_.path)) {}

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

std::optional<std::string> ObjectPins::DigestOf(absl::string_view object_id) {
  const std::optional<PinKey> key = PinKeyOf(object_id);
  if (!key) {
    return std::nullopt;
  }
  std::string digest(kDigestBytes, '\0');
  key->ToBytes(digest.data());
  return digest;
}

void ObjectPins::Pin(absl::string_view object_id, const PinOwner& owner) {
  const std::optional<std::string> digest = DigestOf(object_id);
  if (!digest.has_value()) {
    return;
  }
  if (!PinDigest(*digest, owner, Clip(object_id))) {
    return;
  }
  if (PinListener* listener = listener_.load(std::memory_order_acquire); listener != nullptr) {
    listener->OnPinned(*digest, owner);
  }
}

bool ObjectPins::PinDigest(absl::string_view digest, const PinOwner& owner) {
  return PinDigest(digest, owner, "(shared)");
}

bool ObjectPins::PinDigest(absl::string_view digest, const PinOwner& owner,
                           absl::string_view what) {
  const int64_t now = Now();
  if (digest.size() != kDigestBytes) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (owner.expires_unix_s <= now) {
    UnpinDigest(digest);
    return true;
  }
  const PinKey key = PinKey::FromBytes(digest.data());
  const std::optional<uint32_t> backend = strings_->Intern(owner.backend_id);
  // Not interned when the backend id was refused: the table keeps only strings in use.
  const std::optional<uint32_t> tenant =
      backend.has_value() ? strings_->Intern(owner.tenant) : std::nullopt;
  if (!backend || !tenant) {
    if (rejected_.fetch_add(1, std::memory_order_relaxed) == 0) {
      spdlog::warn(
          "object pins: cannot pin {} to {} (tenant \"{}\"): more than {} owner "
          "strings or one longer than {} bytes; such pins are counted, not logged again",
          std::string(what), Clip(owner.backend_id), Clip(owner.tenant), PinStrings::kMaxStrings,
          PinStrings::kMaxBytes);
    }
    return false;
  }
  const PinSlot slot{*backend, *tenant, owner.expires_unix_s};
  PinShard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  InsertLocked(shard, key, slot, now);
  const auto record = EncodePinRecord(key, slot);
  LogLocked(shard, absl::string_view(record.data(), record.size()));
  return true;
}

std::optional<PinOwner> ObjectPins::Find(absl::string_view object_id) const {
  const std::optional<PinKey> key = PinKeyOf(object_id);
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
  const std::optional<std::string> digest = DigestOf(object_id);
  if (!digest.has_value()) {
    return;
  }
  UnpinDigest(*digest);
  if (PinListener* listener = listener_.load(std::memory_order_acquire); listener != nullptr) {
    listener->OnUnpinned(*digest);
  }
}

void ObjectPins::UnpinDigest(absl::string_view digest) {
  if (digest.size() != kDigestBytes) {
    return;
  }
  const PinKey key = PinKey::FromBytes(digest.data());
  PinShard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  if (EraseLocked(shard, key)) {
    const auto record = EncodeUnpinRecord(key);
    LogLocked(shard, absl::string_view(record.data(), record.size()));
  }
}

void ObjectPins::InsertLocked(PinShard& shard, const PinKey& key, const PinSlot& slot,
                              int64_t now) {
  shard.mu.AssertHeld();
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
  if (absl::Status status = log_->Open(); !status.ok()) {
    return status;
  }
  const absl::Time started = absl::Now();
  const int64_t now = Now();
  absl::StatusOr<PinLogReplay> replay = log_->Replay(
      *strings_, [this, now](const PinLogRecord& record) { ApplyReplayed(record, now); });
  if (!replay.ok()) {
    return replay.status();
  }
  loaded_records_ = replay->records;
  load_ignored_bytes_ = replay->file_bytes - replay->good_bytes;
  if (CompactionDue()) {
    if (absl::Status status = WriteAndReport(); !status.ok()) {
      spdlog::warn("{}: compaction failed; appending to the log as it is", options_.path);
    }
  }
  spdlog::info("{}: {} object pins loaded from {} records in {} ms", options_.path, size(),
               replay->records, absl::ToInt64Milliseconds(absl::Now() - started));
  return absl::OkStatus();
}

void ObjectPins::ApplyReplayed(const PinLogRecord& record, int64_t now) {
  PinShard& shard = ShardOf(record.key);
  absl::MutexLock lock(&shard.mu);
  if (record.type == PinLogRecord::Type::kPin && record.slot.expires_unix_s > now) {
    InsertLocked(shard, record.key, record.slot, now);
  } else {
    EraseLocked(shard, record.key);  // an unpin, or a pin that has expired since
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
  if (!log_->is_open()) {
    return absl::OkStatus();
  }
  absl::Status status = WriteAndReport();
  log_->Close();
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
  if (!log_->is_open()) {
    return absl::OkStatus();
  }
  if (needs_compaction_.load() || CompactionDue()) {
    return Compact();
  }
  // Taken before Append reads the string table, so every string a record names is in it.
  const std::string records = TakePending();
  return log_->Append(*strings_, records);
}

bool ObjectPins::CompactionDue() const {
  return log_->CompactionDue(size(), options_.compact_min_bytes);
}

std::string ObjectPins::TakePending() {
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
  return records;
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
  absl::StatusOr<std::unique_ptr<PinLogRewrite>> rewrite = log_->StartRewrite();
  if (!rewrite.ok()) {
    return rewrite.status();
  }
  // Cleared first: a record dropped while this runs sets it again.
  needs_compaction_.store(false);
  const int64_t now = Now();
  std::vector<std::pair<PinKey, PinSlot>> copied;
  for (std::size_t i = 0; i < kShards; ++i) {
    SnapshotShard(shards_[i], now, &copied);
    // Strings after the copy: every index the copied pins name is defined by then.
    (*rewrite)->AddNewStrings(*strings_);
    for (const auto& [key, slot] : copied) {
      (*rewrite)->AddPin(key, slot);
    }
    if (absl::Status status = (*rewrite)->WriteIfFull(); !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = log_->Replace(*std::move(rewrite)); !status.ok()) {
    return status;
  }
  compactions_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

ObjectPinsStats ObjectPins::stats() const {
  ObjectPinsStats stats;
  stats.pins = size();
  stats.pending_bytes = pending_bytes_.load(std::memory_order_relaxed);
  stats.strings = strings_->size();
  stats.file_bytes = log_->bytes();
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
  std::size_t bytes =
      sizeof(*this) + kShards * sizeof(PinShard) + sizeof(PinLog) + strings_->MemoryBytes();
  for (std::size_t i = 0; i < kShards; ++i) {
    absl::ReaderMutexLock lock(&shards_[i].mu);
    const std::size_t capacity = shards_[i].pins.capacity();
    bytes += capacity == 0 ? 0 : capacity * kSlotBytes + 16;
    bytes += shards_[i].pending.capacity();
  }
  return bytes;
}

}  // namespace spillway
