// The pins' interned backend ids and tenant names: a pin holds two 32-bit indexes, and Find
// turns them back into strings on every I/O thread without taking a lock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace spillway {
namespace object_pins_internal {

// Strings live in fixed-size chunks that never move once published, so Get needs no lock.
// They are kept for the table's life: they come from routing tables, a few hundred in all.
class PinStrings {
 public:
  static constexpr std::size_t kMaxStrings = 1 << 16;
  static constexpr std::size_t kMaxBytes = 1024;

  PinStrings() = default;
  ~PinStrings();
  PinStrings(const PinStrings&) = delete;
  PinStrings& operator=(const PinStrings&) = delete;

  // The index of `text`, added if new; nullopt when it is too long or the table is full.
  std::optional<uint32_t> Intern(absl::string_view text);

  // `index` must have come from Intern, or be below a size() this thread read.
  const std::string& Get(uint32_t index) const {
    return chunks_[index / kChunk].load(std::memory_order_acquire)[index % kChunk];
  }

  std::size_t size() const { return size_.load(std::memory_order_acquire); }

  std::size_t MemoryBytes() const;

 private:
  static constexpr std::size_t kChunk = 256;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> index_ ABSL_GUARDED_BY(mu_);
  std::size_t text_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<std::atomic<std::string*>, kMaxStrings / kChunk> chunks_{};
  std::atomic<std::size_t> size_{0};
};

}  // namespace object_pins_internal
}  // namespace spillway
