// Per-request scratch memory taken from a per-thread free list, most recently returned first,
// as nginx takes a request's buffers from malloc and frees them when it ends: at 256 client
// connections the scratch each connection kept of its own (header fields, the relay's chunk)
// was cold by its next request, ~100 cache misses a request more than at 32 (callgrind's cache
// model), where a shared list hands every request the block the last one just warmed.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace spillway {

// Blocks of T, taken and returned on one I/O thread (each thread has its own list, so no
// locks). At most kMaxFree are kept free; more are deleted when returned, so a burst of
// concurrent requests does not pin its peak memory. T is default-initialised when first made
// (a char array stays unwritten) and keeps whatever the last user left in it.
template <class T, std::size_t kMaxFree>
class ThreadFreeList {
 public:
  // Owns one block until destroyed or reset, then returns it to the thread's list.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        reset();
        block_ = std::exchange(other.block_, nullptr);
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { reset(); }

    explicit operator bool() const { return block_ != nullptr; }
    T* get() const { return block_; }
    T& operator*() const { return *block_; }
    T* operator->() const { return block_; }

    void reset() {
      if (block_ != nullptr) {
        ReturnBlock(std::exchange(block_, nullptr));
      }
    }

   private:
    friend class ThreadFreeList;
    explicit Lease(T* block) : block_(block) {}
    T* block_ = nullptr;
  };

  static Lease Take() { return Lease(TakeBlock()); }

  // Take and Lease in two steps, for a caller that can only store a pointer (a read's target,
  // drained_read.h): a block taken with TakeBlock is owned until Adopt gives it to a Lease or
  // ReturnBlock returns it.
  static T* TakeBlock() {
    std::vector<std::unique_ptr<T>>& free = List();
    if (free.empty()) {
      return new T;
    }
    T* block = free.back().release();
    free.pop_back();
    return block;
  }
  static Lease Adopt(T* block) { return Lease(block); }
  static void ReturnBlock(T* block) {
    std::vector<std::unique_ptr<T>>& free = List();
    if (free.size() >= kMaxFree) {
      delete block;
      return;
    }
    free.emplace_back(block);
  }

  // Blocks free on the calling thread.
  static std::size_t free_count() { return List().size(); }

 private:
  static std::vector<std::unique_ptr<T>>& List() {
    thread_local std::vector<std::unique_ptr<T>> free = [] {
      std::vector<std::unique_ptr<T>> list;
      list.reserve(kMaxFree);  // so that returning a block never allocates
      return list;
    }();
    return free;
  }
};

}  // namespace spillway
