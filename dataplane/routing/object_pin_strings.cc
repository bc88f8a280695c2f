// See object_pin_strings.h. Intern takes the writer lock only for a string not seen before.
#include "dataplane/routing/object_pin_strings.h"

#include <utility>

namespace spillway {
namespace object_pins_internal {

PinStrings::~PinStrings() {
  for (std::atomic<std::string*>& chunk : chunks_) {
    delete[] chunk.load(std::memory_order_relaxed);
  }
}

std::optional<uint32_t> PinStrings::Intern(absl::string_view text) {
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
  // Published last: a reader that sees the new size sees the string in its chunk.
  size_.store(index + 1, std::memory_order_release);
  return static_cast<uint32_t>(index);
}

std::size_t PinStrings::MemoryBytes() const {
  absl::ReaderMutexLock lock(&mu_);
  const std::size_t chunks = (size_.load(std::memory_order_relaxed) + kChunk - 1) / kChunk;
  // Each string is held twice (chunk and index); SSO hides short ones, so count text twice.
  return sizeof(*this) + chunks * kChunk * sizeof(std::string) +
         index_.capacity() * (sizeof(std::pair<std::string, uint32_t>) + 1) + 2 * text_bytes_;
}

}  // namespace object_pins_internal
}  // namespace spillway
