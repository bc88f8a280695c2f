// HeaderArena and the request types over it: blocks come from the buffer until it is full and
// from the heap after, the buffer is free again once its last block is, and Beast's fields,
// parser and messages work over it (a head larger than the arena included).
#include "dataplane/http/header_arena.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/http/upstream_request.h"

namespace spillway {
namespace {

TEST(HeaderArenaTest, HandsOutTheBufferThenTheHeap) {
  HeaderArena arena;
  void* first = arena.Allocate(1000, 8);
  void* second = arena.Allocate(1000, 8);
  EXPECT_TRUE(arena.Owns(first));
  EXPECT_TRUE(arena.Owns(second));
  EXPECT_EQ(arena.used(), 2000u);
  // No room left for this one: the heap, and the arena's bookkeeping is untouched.
  void* beyond = arena.Allocate(HeaderArena::kCapacity, 8);
  EXPECT_FALSE(arena.Owns(beyond));
  EXPECT_EQ(arena.used(), 2000u);
  EXPECT_EQ(arena.live(), 2u);
  std::memset(beyond, 'x', HeaderArena::kCapacity);  // usable whole (ASan would tell)
  arena.Deallocate(beyond, HeaderArena::kCapacity);
  EXPECT_EQ(arena.live(), 2u);
  arena.Deallocate(first, 1000);
  arena.Deallocate(second, 1000);
  EXPECT_EQ(arena.live(), 0u);
  EXPECT_EQ(arena.used(), 0u);
}

TEST(HeaderArenaTest, NeverHandsOutMoreThanItsCapacity) {
  HeaderArena arena;
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    blocks.push_back(arena.Allocate(24, 8));
    EXPECT_LE(arena.used(), HeaderArena::kCapacity);
  }
  std::size_t in_buffer = 0;
  for (void* block : blocks) {
    in_buffer += arena.Owns(block) ? 1 : 0;
  }
  EXPECT_EQ(in_buffer, HeaderArena::kCapacity / 24);
  EXPECT_EQ(arena.live(), in_buffer);
  for (void* block : blocks) {
    arena.Deallocate(block, 24);
  }
  EXPECT_EQ(arena.live(), 0u);
  EXPECT_EQ(arena.used(), 0u);
}

TEST(HeaderArenaTest, IsRecycledWhenItsLastBlockIsFreed) {
  HeaderArena arena;
  void* a = arena.Allocate(100, 8);
  void* b = arena.Allocate(100, 8);
  // Freed out of order: b's room is not the latest's once c exists, so it stays taken.
  void* c = arena.Allocate(100, 8);
  arena.Deallocate(b, 100);
  EXPECT_EQ(arena.used(), 308u);
  arena.Deallocate(a, 100);
  EXPECT_EQ(arena.used(), 308u);
  arena.Deallocate(c, 100);
  // All freed: the next request starts at the same place.
  EXPECT_EQ(arena.used(), 0u);
  EXPECT_EQ(arena.Allocate(100, 8), a);
}

TEST(HeaderArenaTest, TheLatestBlockFreedIsTakenAgain) {
  HeaderArena arena;
  void* kept = arena.Allocate(64, 8);
  void* replaced = arena.Allocate(40, 8);
  arena.Deallocate(replaced, 40);
  EXPECT_EQ(arena.used(), 64u);
  EXPECT_EQ(arena.Allocate(40, 8), replaced);
  arena.Deallocate(replaced, 40);
  arena.Deallocate(kept, 64);
}

TEST(HeaderArenaTest, AlignsBlocks) {
  HeaderArena arena;
  void* odd = arena.Allocate(3, 1);
  void* aligned = arena.Allocate(16, alignof(std::max_align_t));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned) % alignof(std::max_align_t), 0u);
  void* empty = arena.Allocate(0, 8);
  EXPECT_TRUE(arena.Owns(empty));
  arena.Deallocate(empty, 0);
  arena.Deallocate(aligned, 16);
  arena.Deallocate(odd, 3);
  EXPECT_EQ(arena.live(), 0u);
}

TEST(ArenaAllocatorTest, WithoutAnArenaUsesTheHeap) {
  ArenaAllocator<int> heap;
  int* p = heap.allocate(4);
  p[3] = 7;
  heap.deallocate(p, 4);
  HeaderArena arena;
  ArenaAllocator<char> in_arena(&arena);
  const ArenaAllocator<int> rebound(in_arena);
  EXPECT_EQ(rebound.arena(), &arena);
  EXPECT_TRUE(rebound == in_arena);
  EXPECT_FALSE(heap == rebound);
}

// A head with as many headers as the SDKs send.
std::string SdkHead(const std::string& extra_header) {
  return "POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21 HTTP/1.1\r\n"
         "Host: localhost:8080\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
         "Accept: application/json\r\nContent-Type: application/json\r\n"
         "User-Agent: AzureOpenAI/Python 1.54.4\r\nX-Stainless-Lang: python\r\n"
         "X-Stainless-Package-Version: 1.54.4\r\nX-Stainless-OS: Linux\r\n"
         "X-Stainless-Arch: x64\r\nX-Stainless-Runtime: CPython\r\n"
         "X-Stainless-Runtime-Version: 3.11.7\r\napi-key: 0123456789abcdef0123456789abcdef\r\n"
         "X-Stainless-Async: false\r\nx-stainless-retry-count: 0\r\n" +
         extra_header + "Content-Length: 2\r\n\r\n{}";
}

// Feeds `text` to the parser as a session does (Beast takes a head in one piece, then the body).
boost::beast::error_code Parse(RequestParser<http::string_body>& parser, const std::string& text) {
  boost::beast::error_code ec;
  std::size_t offset = 0;
  while (!ec && !parser.is_done() && offset < text.size()) {
    offset += parser.put(boost::asio::buffer(text.data() + offset, text.size() - offset), ec);
  }
  return ec;
}

TEST(RequestFieldsTest, ParsesIntoTheArenaAndGivesItBack) {
  HeaderArena arena;
  for (int request = 0; request < 3; ++request) {
    RequestParser<http::string_body> parser(std::piecewise_construct, std::make_tuple(),
                                            std::make_tuple(ArenaAllocator<char>(&arena)));
    const boost::beast::error_code ec = Parse(parser, SdkHead(""));
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(parser.is_done());
    const Request<http::string_body>& parsed = parser.get();
    EXPECT_EQ(parsed.target(),
              "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21");
    EXPECT_EQ(parsed["api-key"], "0123456789abcdef0123456789abcdef");
    EXPECT_EQ(parsed.body(), "{}");
    // Every header and the target in the arena: 16 headers and the target, a block each.
    EXPECT_EQ(arena.live(), 17u);
    EXPECT_GT(arena.used(), 0u);

    // The upstream request shares it: its target and credential, a block each.
    UpstreamRequest upstream(parsed.get_allocator().arena());
    upstream.target.assign("/openai/deployments/gpt-4o-eastus/chat/completions");
    upstream.SetCredential("api-key", "fedcba9876543210");
    EXPECT_EQ(arena.live(), 19u);
    EXPECT_LE(arena.used(), HeaderArena::kCapacity);
    upstream.SetCredential("Authorization", "Bearer another backend's token");
    EXPECT_EQ(upstream.credential_name, "Authorization");
    EXPECT_EQ(std::string(upstream.credential_value.data(), upstream.credential_value.size()),
              "Bearer another backend's token");
    EXPECT_EQ(arena.live(), 19u);
    EXPECT_LE(arena.used(), HeaderArena::kCapacity);

    // A copy of the head (an upload keeps one) is in the same arena.
    const Request<http::string_body> copy(parsed.base());
    EXPECT_EQ(copy["User-Agent"], "AzureOpenAI/Python 1.54.4");
    EXPECT_EQ(copy.get_allocator(), parsed.get_allocator());
  }
  EXPECT_EQ(arena.live(), 0u);
  EXPECT_EQ(arena.used(), 0u);
}

// FindField walks the fields comparing their enums: it must find what Beast's find finds,
// however the field was stored (parsed, inserted by name in any case, inserted by enum), the
// first of several, and nothing for a field the head lacks.
TEST(RequestFieldsTest, FindFieldFindsWhatBeastsFindFinds) {
  RequestParser<http::string_body> parser;
  ASSERT_FALSE(Parse(parser, SdkHead("")));
  Request<http::string_body>& request = parser.get();
  request.insert("CONTENT-type", "text/plain");  // a second one, after the parsed one
  request.insert(http::field::expect, "100-continue");
  request.insert("x-Custom", "1");
  for (const http::field name :
       {http::field::content_type, http::field::host, http::field::user_agent,
        http::field::content_length, http::field::expect, http::field::authorization,
        http::field::transfer_encoding, http::field::accept}) {
    const auto found = FindField(request.base(), name);
    EXPECT_EQ(found, request.find(name)) << http::to_string(name);
  }
  ASSERT_NE(FindField(request.base(), http::field::content_type), request.end());
  EXPECT_EQ(FindField(request.base(), http::field::content_type)->value(), "application/json");
  EXPECT_EQ(FindField(request.base(), http::field::authorization), request.end());
}

TEST(RequestFieldsTest, AHeadLargerThanTheArenaSpillsToTheHeap) {
  HeaderArena arena;
  const std::string token(4 * HeaderArena::kCapacity, 't');
  {
    RequestParser<http::string_body> parser(std::piecewise_construct, std::make_tuple(),
                                            std::make_tuple(ArenaAllocator<char>(&arena)));
    parser.header_limit(64 * 1024);
    const boost::beast::error_code ec =
        Parse(parser, SdkHead("Authorization: Bearer " + token + "\r\n"));
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(parser.get().body(), "{}");
    EXPECT_EQ(parser.get()[http::field::authorization], "Bearer " + token);
    EXPECT_EQ(parser.get()[http::field::content_length], "2");
    EXPECT_LE(arena.used(), HeaderArena::kCapacity);
    EXPECT_LT(arena.live(), 18u);  // some headers are on the heap
  }
  EXPECT_EQ(arena.live(), 0u);
  EXPECT_EQ(arena.used(), 0u);
}

// An empty request whose fields are allocated from `arena`.
Request<http::empty_body> EmptyIn(HeaderArena* arena) {
  return Request<http::empty_body>(std::piecewise_construct, std::make_tuple(),
                                   std::make_tuple(ArenaAllocator<char>(arena)));
}

TEST(RequestFieldsTest, MovedMessagesKeepTheirArena) {
  HeaderArena arena;
  HeaderArena other;
  {
    auto first = EmptyIn(&arena);
    first.set(http::field::host, "a.example");
    Request<http::empty_body> moved(std::move(first));
    EXPECT_EQ(moved[http::field::host], "a.example");
    EXPECT_EQ(moved.get_allocator().arena(), &arena);
    auto assigned = EmptyIn(&other);
    assigned.set(http::field::host, "b.example");
    assigned = std::move(moved);
    EXPECT_EQ(assigned[http::field::host], "a.example");
    EXPECT_EQ(other.live(), 0u);  // the assigned-over header went back to its own arena
  }
  EXPECT_EQ(arena.live(), 0u);
}

TEST(RequestFieldsTest, WithoutAnArenaTheFieldsUseTheHeap) {
  Request<http::string_body> request{http::verb::get, "/healthz", 11};
  request.set(http::field::host, "localhost");
  EXPECT_EQ(request.get_allocator().arena(), nullptr);
  EXPECT_EQ(request[http::field::host], "localhost");
}

}  // namespace
}  // namespace spillway
