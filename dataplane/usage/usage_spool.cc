// See usage_spool.h. The directory is fsynced after each new file so a batch's name survives
// a power cut, not only its bytes. Leftover temp files of an interrupted write are removed.
#include "dataplane/usage/usage_spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_io.h"

namespace spillway {
namespace {

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    absl::Status status = absl::InternalError(
        absl::StrCat("cannot sync directory ", dir, ": ", std::strerror(errno)));
    if (fd >= 0) {
      ::close(fd);
    }
    return status;
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UsageSpool> UsageSpool::Open(const std::string& state_dir) {
  // The sequence file lives in the spool directory, so one directory fsync makes both the
  // number and the batch file durable.
  UsageSpool spool(state_dir + "/usage-spool", state_dir + "/usage-spool/sequence");
  if (::mkdir(spool.dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("cannot create ", spool.dir_, ": ", std::strerror(errno)));
  }
  if (absl::StatusOr<std::string> text = ReadFile(spool.sequence_path_); text.ok()) {
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &spool.last_sequence_)) {
      // Reusing a number would make the control plane drop a batch as a replay; numbers
      // above any this clock could have produced before are safe.
      spool.last_sequence_ = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())) * 1000;
      spdlog::error("{} is unreadable; usage batches continue from sequence {}",
                    spool.sequence_path_, spool.last_sequence_ + 1);
    }
  }
  DIR* dir = ::opendir(spool.dir_.c_str());
  if (dir == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot list ", spool.dir_, ": ", std::strerror(errno)));
  }
  while (const dirent* entry = ::readdir(dir)) {
    absl::string_view name = entry->d_name;
    const std::string path = absl::StrCat(spool.dir_, "/", name);
    uint64_t sequence = 0;
    if (absl::StrContains(name, ".tmp.")) {
      ::unlink(path.c_str());  // a write that never completed: its batch was never acked
      continue;
    }
    if (!absl::ConsumeSuffix(&name, ".pb") || !absl::SimpleAtoi(name, &sequence)) {
      continue;
    }
    struct stat info {};
    const uint64_t size = ::stat(path.c_str(), &info) == 0 ? info.st_size : 0;
    spool.batches_[sequence] = size;
    spool.bytes_ += size;
    spool.last_sequence_ = std::max(spool.last_sequence_, sequence);
  }
  ::closedir(dir);
  return spool;
}

std::string UsageSpool::BatchPath(uint64_t sequence) const {
  // Zero-padded so a directory listing shows the order.
  return absl::StrFormat("%s/%020u.pb", dir_, sequence);
}

absl::StatusOr<uint64_t> UsageSpool::Append(v1::UsageBatch& batch) {
  const uint64_t sequence = last_sequence_ + 1;
  // The number is on disk before any batch carries it: a restart can never hand it out
  // again, even after the batch was acked and deleted.
  if (absl::Status status = WriteFileAtomically(sequence_path_, absl::StrCat(sequence, "\n"));
      !status.ok()) {
    return status;
  }
  last_sequence_ = sequence;
  batch.set_sequence(sequence);
  const std::string bytes = batch.SerializeAsString();
  if (absl::Status status = WriteFileAtomically(BatchPath(sequence), bytes); !status.ok()) {
    return status;
  }
  if (absl::Status status = SyncDirectory(dir_); !status.ok()) {
    return status;
  }
  batches_[sequence] = bytes.size();
  bytes_ += bytes.size();
  return sequence;
}

absl::StatusOr<v1::UsageBatch> UsageSpool::Read(uint64_t sequence) const {
  absl::StatusOr<std::string> bytes = ReadFile(BatchPath(sequence));
  if (!bytes.ok()) {
    return bytes.status();
  }
  v1::UsageBatch batch;
  if (!batch.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat(BatchPath(sequence), " is not a usage batch"));
  }
  return batch;
}

void UsageSpool::Remove(uint64_t sequence) {
  auto it = batches_.find(sequence);
  if (it == batches_.end()) {
    return;
  }
  // If the unlink is lost in a crash, the batch is replayed and the control plane skips it.
  ::unlink(BatchPath(sequence).c_str());
  bytes_ -= it->second;
  batches_.erase(it);
}

}  // namespace spillway
