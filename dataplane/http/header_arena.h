// Request header fields in memory a request leases for its life. Beast's `basic_fields` takes
// an allocation per header and one for the target (`http::fields` made ~9 of the agent's 22 heap
// allocations per request, client and upstream request together); with `RequestFields` they
// come out of a `HeaderArena` instead, and the heap is used only for what does not fit.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "dataplane/http/thread_free_list.h"

namespace spillway {

// A bump allocator over a fixed buffer, for the fields of one request being served (the
// client's and the one sent upstream). Freeing the last block still out makes the whole buffer
// free again, so an arena is recycled request after request without being reset by hand, and
// its memory is bounded by kCapacity: what does not fit (an unusually large head, a long Entra
// ID token) comes from the heap and goes back to it. One thread at a time.
class HeaderArena {
 public:
  // The SDKs' request heads (~15 headers, ~1.6 KB here) and what the agent sets on the
  // upstream request (~0.4 KB). Each request in progress holds one (HeaderArenas).
  static constexpr std::size_t kCapacity = 2 * 1024;

  HeaderArena() = default;
  HeaderArena(const HeaderArena&) = delete;
  HeaderArena& operator=(const HeaderArena&) = delete;

  // `alignment` is at most alignof(std::max_align_t) (ArenaAllocator checks it).
  void* Allocate(std::size_t bytes, std::size_t alignment);
  void Deallocate(void* pointer, std::size_t bytes) noexcept;

  // Bytes of the buffer handed out since it was last wholly free (the room taken by blocks
  // freed out of order is only regained then).
  std::size_t used() const { return used_; }
  // Blocks from the buffer not yet freed.
  std::size_t live() const { return live_; }
  // Whether `pointer` is in the buffer (as opposed to a heap block).
  bool Owns(const void* pointer) const;

 private:
  alignas(std::max_align_t) unsigned char buffer_[kCapacity];
  std::size_t used_ = 0;
  std::size_t live_ = 0;
};

// The arenas of a thread's requests: each request leases one when its first bytes arrive and
// returns it when answered, so an idle connection holds none and a request writes its fields
// where the one before it just did (thread_free_list.h says why that matters at 256
// connections). 256 kept free: 512 KiB a thread.
using HeaderArenas = ThreadFreeList<HeaderArena, 256>;

// A standard allocator over a HeaderArena; without one (default-constructed: the admin
// listener, tests), the heap. Copies share the arena: whatever is built from a request's fields
// (the upstream request, a copy of the head) lives in the same request's arena, and must
// not outlive the request.
template <class T>
class ArenaAllocator {
 public:
  using value_type = T;
  // Containers moved or swapped take the arena along with the blocks they own.
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;

  static_assert(alignof(T) <= alignof(std::max_align_t), "the arena aligns to max_align_t");

  ArenaAllocator() noexcept = default;
  explicit ArenaAllocator(HeaderArena* arena) noexcept : arena_(arena) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept  // NOLINT: rebinding converts
      : arena_(other.arena()) {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) {
      throw std::bad_array_new_length();
    }
    if (arena_ == nullptr) {
      return static_cast<T*>(::operator new(n * sizeof(T)));
    }
    return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T)));
  }

  void deallocate(T* pointer, std::size_t n) noexcept {
    if (arena_ == nullptr) {
      ::operator delete(pointer, n * sizeof(T));
      return;
    }
    arena_->Deallocate(pointer, n * sizeof(T));
  }

  HeaderArena* arena() const noexcept { return arena_; }

  template <class U>
  bool operator==(const ArenaAllocator<U>& other) const noexcept {
    return arena_ == other.arena();
  }

 private:
  HeaderArena* arena_ = nullptr;
};

namespace http = boost::beast::http;

// The agent's request types: the client's request as parsed, and the request sent upstream.
using RequestFields = http::basic_fields<ArenaAllocator<char>>;
using RequestHead = http::request_header<RequestFields>;
template <class Body>
using Request = http::request<Body, RequestFields>;
template <class Body>
using RequestParser = http::request_parser<Body, ArenaAllocator<char>>;

// The first field named `name` (a known field), as RequestFields::find(name) finds it. Beast
// finds by comparing the name's string case-insensitively down its ordered set (~550
// instructions for Content-Type on the SDK's head, callgrind); every stored field carries its
// enum (Beast's parser and insert(string_view) look it up, plain_request.h does too), and a
// head has few fields, so a walk comparing enums finds the same field.
inline RequestFields::const_iterator FindField(const RequestFields& fields, http::field name) {
  auto it = fields.begin();
  while (it != fields.end() && it->name() != name) {
    ++it;
  }
  return it;
}

}  // namespace spillway
