// ThreadFreeList: a returned block is the next one taken (the warm one), the list keeps at most
// its bound, each thread has a list of its own, and leases move without returning twice.
#include "dataplane/http/thread_free_list.h"

#include <gtest/gtest.h>

#include <thread>
#include <utility>
#include <vector>

namespace spillway {
namespace {

// A block type per test: each instantiation has lists of its own, which the tests before it
// on this thread have not filled.
template <int kTest>
struct Block {
  int value = 0;
};

TEST(ThreadFreeList, TheBlockReturnedLastIsTakenFirst) {
  using List = ThreadFreeList<Block<0>, 4>;
  List::Lease a = List::Take();
  List::Lease b = List::Take();
  Block<0>* const first = a.get();
  Block<0>* const second = b.get();
  ASSERT_NE(first, second);
  a.reset();
  b.reset();
  EXPECT_EQ(List::free_count(), 2u);
  List::Lease c = List::Take();
  EXPECT_EQ(c.get(), second) << "the most recently returned block";
  List::Lease d = List::Take();
  EXPECT_EQ(d.get(), first);
  EXPECT_EQ(List::free_count(), 0u);
}

TEST(ThreadFreeList, KeepsAtMostItsBound) {
  using List = ThreadFreeList<Block<1>, 2>;
  std::vector<List::Lease> leases;
  for (int i = 0; i < 5; ++i) {
    leases.push_back(List::Take());
  }
  leases.clear();
  EXPECT_EQ(List::free_count(), 2u) << "three of the five were deleted, not kept";
}

TEST(ThreadFreeList, EachThreadHasItsOwnList) {
  using List = ThreadFreeList<Block<2>, 4>;
  List::Take().reset();
  ASSERT_EQ(List::free_count(), 1u);
  std::size_t other_thread_free = 99;
  std::thread([&] { other_thread_free = List::free_count(); }).join();
  EXPECT_EQ(other_thread_free, 0u);
  EXPECT_EQ(List::free_count(), 1u);
}

TEST(ThreadFreeList, AMovedLeaseReturnsItsBlockOnce) {
  using List = ThreadFreeList<Block<3>, 4>;
  ASSERT_EQ(List::free_count(), 0u);
  List::Lease a = List::Take();
  a->value = 7;
  List::Lease b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): a moved lease is empty by contract
  EXPECT_EQ(b->value, 7);
  List::Lease c = List::Take();
  c = std::move(b);  // c's own block goes back; b's is now c's
  EXPECT_EQ(List::free_count(), 1u);
  EXPECT_EQ(c->value, 7) << "a block keeps what its last user left";
  c.reset();
  c.reset();
  EXPECT_EQ(List::free_count(), 2u);
}

}  // namespace
}  // namespace spillway
