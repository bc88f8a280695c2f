// SlotTable: nodes added and removed in any order are each visited once, a freed slot is
// reused before the table grows, and a node may be removed while it is being visited.
#include "dataplane/http/slot_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

namespace spillway {
namespace {

struct Node {
  int id = 0;
  std::uint32_t slot_ = 0;
  bool linked_ = false;
};

std::set<int> Visited(SlotTable<Node>& table) {
  std::set<int> ids;
  table.ForEach([&](Node& node) { EXPECT_TRUE(ids.insert(node.id).second) << node.id; });
  return ids;
}

TEST(SlotTable, VisitsWhatIsPresentOnce) {
  SlotTable<Node> table;
  EXPECT_TRUE(table.empty());
  std::vector<Node> nodes(5);
  for (int i = 0; i < 5; ++i) {
    nodes[i].id = i;
    table.Add(nodes[i]);
    EXPECT_TRUE(nodes[i].linked_);
  }
  table.Remove(nodes[1]);
  table.Remove(nodes[3]);
  EXPECT_FALSE(nodes[1].linked_);
  EXPECT_EQ(Visited(table), (std::set<int>{0, 2, 4}));
  table.Remove(nodes[0]);
  table.Remove(nodes[4]);
  table.Remove(nodes[2]);
  EXPECT_TRUE(table.empty());
  EXPECT_TRUE(Visited(table).empty());
}

TEST(SlotTable, AFreedSlotIsReusedBeforeTheTableGrows) {
  SlotTable<Node> table;
  Node a{1}, b{2}, c{3};
  table.Add(a);
  table.Add(b);
  const std::uint32_t freed = a.slot_;
  table.Remove(a);
  table.Add(c);
  EXPECT_EQ(c.slot_, freed);
  EXPECT_NE(c.slot_, b.slot_);
  EXPECT_EQ(Visited(table), (std::set<int>{2, 3}));
}

TEST(SlotTable, ANodeMayBeRemovedWhileVisited) {
  SlotTable<Node> table;
  std::vector<Node> nodes(6);
  for (int i = 0; i < 6; ++i) {
    nodes[i].id = i;
    table.Add(nodes[i]);
  }
  table.ForEach([&](Node& node) {
    if (node.id % 2 == 0) {
      table.Remove(node);
    }
  });
  EXPECT_EQ(Visited(table), (std::set<int>{1, 3, 5}));
  EXPECT_FALSE(nodes[0].linked_);
  EXPECT_TRUE(nodes[1].linked_);
}

}  // namespace
}  // namespace spillway
