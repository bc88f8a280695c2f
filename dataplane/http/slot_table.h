// The set of nodes one I/O thread is waiting on (socket deadlines, watched clients), kept as a
// table of slots: adding or removing a node touches the node and this table's two arrays only.
// An intrusive list also touched the neighbours, other connections' memory, cold at 256
// connections or 2,000 paced streams: three cache misses per arm and disarm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace spillway {

// `Node` has `std::uint32_t slot_` and `bool linked_`, which only the table sets. One thread.
// Bounded by the most nodes ever present at once; a freed slot is reused before any new one.
template <class Node>
class SlotTable {
 public:
  void Add(Node& node) {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      slots_[slot] = &node;
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.push_back(&node);
      // Remove then never allocates (it runs in destructors): room for every slot to be free.
      free_.reserve(slots_.capacity());
    }
    node.slot_ = slot;
    node.linked_ = true;
  }

  void Remove(Node& node) noexcept {
    slots_[node.slot_] = nullptr;
    free_.push_back(node.slot_);
    node.linked_ = false;
  }

  bool empty() const { return free_.size() == slots_.size(); }

  // Calls `visit(node)` for each node present; `visit` may remove the node it is given, and
  // nodes added meanwhile may or may not be visited.
  template <class Visit>
  void ForEach(Visit visit) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (Node* node = slots_[i]) {
        visit(*node);
      }
    }
  }

 private:
  std::vector<Node*> slots_;
  std::vector<std::uint32_t> free_;
};

}  // namespace spillway
