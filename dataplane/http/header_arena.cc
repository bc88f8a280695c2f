// See header_arena.h.
#include "dataplane/http/header_arena.h"

#include <algorithm>
#include <functional>

namespace spillway {

bool HeaderArena::Owns(const void* pointer) const {
  // std::less: a total order even for pointers outside the buffer.
  const auto* p = static_cast<const unsigned char*>(pointer);
  return !std::less<const unsigned char*>()(p, buffer_) &&
         std::less<const unsigned char*>()(p, buffer_ + kCapacity);
}

void* HeaderArena::Allocate(std::size_t bytes, std::size_t alignment) {
  // A zero-byte block still takes a byte, so that it lies inside the buffer and is told apart
  // from a heap block when freed.
  bytes = std::max<std::size_t>(bytes, 1);
  const std::size_t start = (used_ + alignment - 1) & ~(alignment - 1);
  if (start <= kCapacity && bytes <= kCapacity - start) {
    used_ = start + bytes;
    ++live_;
    return buffer_ + start;
  }
  return ::operator new(bytes);
}

void HeaderArena::Deallocate(void* pointer, std::size_t bytes) noexcept {
  bytes = std::max<std::size_t>(bytes, 1);
  if (!Owns(pointer)) {
    ::operator delete(pointer, bytes);
    return;
  }
  if (--live_ == 0) {
    used_ = 0;  // nothing left in it: the next request starts at the beginning
    return;
  }
  // The latest block (a target replaced, a header set again): its room is taken again at once.
  if (static_cast<unsigned char*>(pointer) + bytes == buffer_ + used_) {
    used_ -= bytes;
  }
}

}  // namespace spillway
