// The pin log file (layout in object_pin_record.h): replayed at start with a torn tail cut
// off, appended to and synced by the writer, and rewritten whole when compacted.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/routing/object_pin_key.h"
#include "dataplane/routing/object_pin_record.h"
#include "dataplane/routing/object_pin_strings.h"

namespace spillway {
namespace object_pins_internal {

struct PinLogReplay {
  uint64_t file_bytes = 0;
  uint64_t good_bytes = 0;  // the header and every complete, valid record
  uint64_t records = 0;
  std::string stop_reason;  // why the replay stopped before the end of the file
};

// A compacted log being written beside the live one, at "<path>.tmp", so that a crash at any
// point leaves one whole log. PinLog::Replace puts it in the log's place; destroyed before
// that, it removes its file.
class PinLogRewrite {
 public:
  ~PinLogRewrite();
  PinLogRewrite(const PinLogRewrite&) = delete;
  PinLogRewrite& operator=(const PinLogRewrite&) = delete;

  // String records for the strings interned since the last call. Called after the pins that
  // follow were copied, so that every string they name is defined before them.
  void AddNewStrings(const PinStrings& strings) { strings_.AppendNew(strings, &buffer_); }
  void AddPin(const PinKey& key, const PinSlot& slot);
  // Writes what was added once it makes one large write.
  absl::Status WriteIfFull();

 private:
  friend class PinLog;

  PinLogRewrite(std::string log_path, int fd);
  absl::Status WriteBuffer();
  // Writes the rest and syncs it, then renames it over the log, durably.
  absl::Status Finish();

  const std::string log_path_;
  const std::string temp_path_;
  int fd_;              // -1 once it is the log
  std::string buffer_;  // added, not yet written
  uint64_t written_ = 0;
  LoggedStrings strings_;
};

// Not thread-safe, but for bytes(): ObjectPins calls the rest under its write lock.
class PinLog {
 public:
  explicit PinLog(std::string path);
  ~PinLog() { Close(); }
  PinLog(const PinLog&) = delete;
  PinLog& operator=(const PinLog&) = delete;

  // Opens the log, creating it if missing. A rewrite cut short is removed: the log is intact.
  absl::Status Open();
  bool is_open() const { return fd_ >= 0; }
  // Reads the log: string records define `strings`, pin and unpin records go to `apply` in log
  // order. The replay stops at the first incomplete or corrupt record, and the log is cut
  // there (a warning says how many bytes were dropped) so that appends follow the last good
  // record, where the next replay will find them.
  absl::StatusOr<PinLogReplay> Replay(PinStrings& strings,
                                      absl::FunctionRef<void(const PinLogRecord&)> apply);
  // Appends the string records for the strings interned since, then `records`, and syncs.
  // The caller took `records` before, so every string they name is interned by now.
  absl::Status Append(const PinStrings& strings, absl::string_view records);
  // Whether the log is past `min_bytes` and more than twice what a rewrite of `pins` would be.
  bool CompactionDue(std::size_t pins, uint64_t min_bytes) const;
  absl::StatusOr<std::unique_ptr<PinLogRewrite>> StartRewrite() const;
  // Finishes `rewrite` and puts it in the log's place: appends go to it from then on.
  absl::Status Replace(std::unique_ptr<PinLogRewrite> rewrite);
  void Close();

  // The log's size as this process wrote it. Thread-safe.
  uint64_t bytes() const { return bytes_.load(); }

 private:
  absl::StatusOr<PinLogReplay> Read(PinStrings& strings,
                                    absl::FunctionRef<void(const PinLogRecord&)> apply) const;
  // A new log, or one whose header never reached the disk.
  absl::Status Start();
  absl::Status Write(absl::string_view bytes);

  const std::string path_;
  int fd_ = -1;
  std::atomic<uint64_t> bytes_{0};
  LoggedStrings strings_;
};

}  // namespace object_pins_internal
}  // namespace spillway
