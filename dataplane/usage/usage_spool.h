// The agent's durable queue of sealed usage batches, in <state-dir>/usage-spool: one file per
// batch (<sequence>.pb, written atomically and fsynced), deleted once the control plane acks
// it. Sequence numbers never repeat for an agent id, across restarts: the last one handed
// out is persisted before the batch that carries it. Not thread-safe (the shipper locks).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spillway/v1/agent_sync.pb.h"

namespace spillway {

class UsageSpool {
 public:
  // Creates the directory if needed and finds the batches left by an earlier run.
  static absl::StatusOr<UsageSpool> Open(const std::string& state_dir);

  // Gives `batch` the next sequence number and writes it durably; on error nothing was
  // spooled (the caller keeps the aggregates and tries again).
  absl::StatusOr<uint64_t> Append(v1::UsageBatch& batch);
  absl::StatusOr<v1::UsageBatch> Read(uint64_t sequence) const;
  // Forgets an acknowledged batch.
  void Remove(uint64_t sequence);

  // Spooled sequences (ascending) and their file sizes.
  const std::map<uint64_t, uint64_t>& batches() const { return batches_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t last_sequence() const { return last_sequence_; }
  const std::string& dir() const { return dir_; }

 private:
  UsageSpool(std::string dir, std::string sequence_path)
      : dir_(std::move(dir)), sequence_path_(std::move(sequence_path)) {}
  std::string BatchPath(uint64_t sequence) const;

  std::string dir_;
  std::string sequence_path_;
  std::map<uint64_t, uint64_t> batches_;
  uint64_t bytes_ = 0;
  uint64_t last_sequence_ = 0;
};

}  // namespace spillway
