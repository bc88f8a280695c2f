// Object pins: which backend created each stateful Azure OpenAI object (resp_…, conv_…,
// file-…, batch_…, vs_…, asst_…, thread_…), so every later request naming it goes there.
// Looked up on the request path from every I/O thread; persisted by a writer thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace spillway {

// The owner of an object that was deleted: the pin stays until the object's retention would
// have ended, so a later call on it is answered 404 at once instead of asking the backends.
inline constexpr absl::string_view kDeletedObjectOwner = "(deleted)";

// An owner whose object lives as long as its backend keeps it (files, vector stores).
inline constexpr int64_t kPinNeverExpires = std::numeric_limits<int64_t>::max();

struct PinOwner {
  std::string backend_id;      // "<instance>/<deployment>": stable across routing table versions
  std::string tenant;          // the creating tenant's name; "" in open-access mode
  int64_t expires_unix_s = 0;  // Find stops answering at this second
};

// Hears of the pins this agent learns itself (Pin, Unpin by object id), not of those it is told
// (PinDigest, UnpinDigest): the sync client passes them on to the region's other agents.
// Called on the request's thread, after the pin is in place; must not block.
class PinListener {
 public:
  virtual ~PinListener() = default;
  virtual void OnPinned(absl::string_view digest, const PinOwner& owner) = 0;
  virtual void OnUnpinned(absl::string_view digest) = 0;
};

// Defined in object_pins.cc and the object_pin_*.h files it includes.
namespace object_pins_internal {
struct PinKey;
class PinLog;
struct PinLogRecord;
struct PinShard;
struct PinSlot;
class PinStrings;
}  // namespace object_pins_internal

struct ObjectPinsOptions {
  // The pin log in the agent's state directory (created if missing); empty: memory only.
  std::string path;
  // Past this many pins the soonest-expiring ones make room (see ObjectPins).
  std::size_t max_pins = 2'000'000;
  // Unix seconds now; empty: the system clock. Tests inject their own.
  std::function<int64_t()> now_unix_s;
  // How often the writer thread appends and fsyncs what Pin and Unpin recorded.
  absl::Duration flush_interval = absl::Milliseconds(100);
  // Records waiting for the writer beyond this are not logged (memory is still updated):
  // a stalled disk must not grow the agent. The next write rewrites the whole log instead.
  std::size_t max_pending_bytes = 64 << 20;
  // The log is compacted (the live set rewritten) once it exceeds twice the live set's size
  // and this floor, at Open and by the writer.
  uint64_t compact_min_bytes = 8 << 20;
};

struct ObjectPinsStats {
  std::size_t pins = 0;           // as size()
  std::size_t pending_bytes = 0;  // logged records not yet written
  std::size_t strings = 0;        // interned backend ids and tenant names
  uint64_t file_bytes = 0;        // the log's size as this process wrote it
  uint64_t evicted = 0;           // pins removed to stay within max_pins
  uint64_t dropped_writes = 0;    // records not logged because the writer fell behind
  uint64_t write_errors = 0;      // failed appends, fsyncs and compactions
  uint64_t rejected = 0;          // Pin calls refused: owner strings too long or too many
  uint64_t compactions = 0;
  uint64_t loaded_records = 0;      // at Open: complete records replayed
  uint64_t load_ignored_bytes = 0;  // at Open: a torn or corrupt tail, dropped from the log
};

// Pins keyed by the first 128 bits of SHA-256(object id): the ids themselves are neither
// kept in memory nor written, and the key is the same in every process. Backend ids and
// tenant names are interned for the object's life (they come from routing tables: a few
// hundred; at most 65,536 in all, 1 KiB each); a pin is one 32-byte map slot. 64 shards,
// each behind its own lock: Find takes a reader lock on one shard and no other lock.
//
// Bound: each shard holds at most ceil(max_pins / 64), so eviction may begin a little before
// size() reaches max_pins when the hash spreads ids unevenly. A Pin into a full shard drops
// its expired pins, then, if still above 7/8 of its share, the soonest-expiring ones down to
// 7/8 (one sweep makes room for many Pins). Soonest-expiring: those are closest to being
// useless anyway, and a pin a backend promises to keep longest is the costliest to lose.
// Expired pins also leave memory when the log is compacted; until then size() counts them.
//
// Durability: Pin and Unpin update memory, then append a record to their shard's pending
// buffer; no I/O on the caller's thread. The writer thread appends and fsyncs the buffers
// every flush_interval. A restart finds every pin whose record was written (Flush, Close or
// one interval later). Evictions are not logged: replay applies the same bound.
//
// The log's format is in object_pin_record.h. Open replays the log, stopping at the first
// incomplete or corrupt record (a warning says how many bytes were dropped) and cutting the log
// there, and compacts when it is worth it.
class ObjectPins {
 public:
  // Loads `options.path` and starts the writer thread. Errors name the path.
  static absl::StatusOr<std::unique_ptr<ObjectPins>> Open(ObjectPinsOptions options);
  // Close()s, logging a failure.
  ~ObjectPins();
  ObjectPins(const ObjectPins&) = delete;
  ObjectPins& operator=(const ObjectPins&) = delete;

  // The 16 bytes that stand for an object id in memory, in the log and between agents.
  static constexpr std::size_t kDigestBytes = 16;
  // Its digest; nullopt only when libcrypto fails.
  static std::optional<std::string> DigestOf(absl::string_view object_id);

  // Records (or replaces) the owner of `object_id`. An owner already expired unpins it.
  void Pin(absl::string_view object_id, const PinOwner& owner);
  // The owner, unless none was pinned or the pin has expired.
  std::optional<PinOwner> Find(absl::string_view object_id) const;
  // The object was deleted.
  void Unpin(absl::string_view object_id);

  // Pin and Unpin by digest, for pins another agent learnt: the listener is not told. False
  // when refused (a digest not kDigestBytes long, owner strings past PinStrings' bounds).
  bool PinDigest(absl::string_view digest, const PinOwner& owner);
  void UnpinDigest(absl::string_view digest);

  // Set before requests are served, or null. Not owned.
  void set_listener(PinListener* listener) { listener_.store(listener, std::memory_order_release); }

  std::size_t size() const { return pins_.load(std::memory_order_relaxed); }
  ObjectPinsStats stats() const;
  // An estimate of the structure's heap footprint: map slots and control bytes, interned
  // strings, pending buffers.
  std::size_t MemoryBytes() const;

  // Writes and fsyncs every record logged before it (or compacts when due). Thread-safe.
  absl::Status Flush();
  // Stops the writer thread after a last Flush (its status) and closes the log. Pins still
  // work afterwards, in memory only. Idempotent.
  absl::Status Close();

 private:
  using PinKey = object_pins_internal::PinKey;
  using PinLogRecord = object_pins_internal::PinLogRecord;
  using PinShard = object_pins_internal::PinShard;
  using PinSlot = object_pins_internal::PinSlot;

  explicit ObjectPins(ObjectPinsOptions options);
  int64_t Now() const;
  PinShard& ShardOf(const PinKey& key) const;
  // Memory only: the caller logs. Makes room first when the shard is full.
  void InsertLocked(PinShard& shard, const PinKey& key, const PinSlot& slot, int64_t now);
  bool EraseLocked(PinShard& shard, const PinKey& key);
  void LogLocked(PinShard& shard, absl::string_view record);
  // `what` names the pin in a warning.
  bool PinDigest(absl::string_view digest, const PinOwner& owner, absl::string_view what);

  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // A pin or unpin record read back from the log.
  void ApplyReplayed(const PinLogRecord& record, int64_t now);

  void RunWriter();
  // WritePending, counting and logging a failure (once per distinct error).
  absl::Status WriteAndReport() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WritePending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  bool CompactionDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Every shard's pending records, in shard order; the buffers are left empty.
  std::string TakePending();
  // Empties the shard's pending records and expired pins; copies the rest into `pins`.
  void SnapshotShard(PinShard& shard, int64_t now, std::vector<std::pair<PinKey, PinSlot>>* pins);
  absl::Status Compact() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const ObjectPinsOptions options_;
  const std::size_t shard_capacity_;
  std::unique_ptr<PinShard[]> shards_;
  std::unique_ptr<object_pins_internal::PinStrings> strings_;

  std::atomic<PinListener*> listener_{nullptr};
  std::atomic<std::size_t> pins_{0};
  std::atomic<std::size_t> pending_bytes_{0};
  std::atomic<bool> logging_{false};           // a log is open: Pin and Unpin record
  std::atomic<bool> needs_compaction_{false};  // the log misses records: rewrite it whole
  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> dropped_writes_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> compactions_{0};
  uint64_t loaded_records_ = 0;
  uint64_t load_ignored_bytes_ = 0;

  mutable absl::Mutex write_mu_;
  // Used under write_mu_, but for its thread-safe bytes() (stats).
  const std::unique_ptr<object_pins_internal::PinLog> log_;
  std::string last_write_error_ ABSL_GUARDED_BY(write_mu_);  // logged once per new error

  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread writer_;
};

}  // namespace spillway
