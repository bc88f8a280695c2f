// The Conversations API's state, per mock process as per Azure resource: the conversations this
// mock created, their metadata and their items, kept in memory. Bounded three ways, each by
// evicting the oldest first as the Responses store does: conversations by count, items per
// conversation by count (a long conversation forgets its start), and all of it by bytes.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace spillway::mock {

// One item of a conversation, as the items endpoints show it, with what it weighs in the prompt
// of a later response created in the conversation.
struct ConversationItem {
  std::string id;
  boost::json::object item;  // with its "id"
  int64_t tokens = 1;
  uint64_t hash = 0;  // of its text, for the prompt cache
  size_t cost = 0;    // bytes counted against the store's bound
};

// An input item (input_items.h) with the text it adds to the prompt.
ConversationItem MakeConversationItem(boost::json::object item, absl::string_view text);
// A response's output: it weighs the tokens that were generated, as with previous_response_id.
ConversationItem MakeOutputItem(boost::json::object item, int64_t tokens);

struct ConversationInfo {
  std::string id;  // "conv_<48 hex>"
  int64_t created_at = 0;
  boost::json::object metadata;
};

// What a conversation's items add to a response created in it: their tokens, and a hash of
// them that a prompt-cache lookup can build on.
struct ConversationHistory {
  int64_t tokens = 0;
  uint64_t hash = 0;
};

class ConversationsStore {
 public:
  // At most `capacity` conversations of at most `max_items` items each, and about
  // `byte_capacity` bytes of them all.
  ConversationsStore(size_t capacity, size_t max_items, size_t byte_capacity);

  void Create(ConversationInfo info, std::vector<ConversationItem> items);
  // nullopt when unknown, deleted or evicted (for every call below).
  std::optional<ConversationInfo> Get(absl::string_view id);
  // Replaces the metadata; the conversation as it is afterwards.
  std::optional<ConversationInfo> UpdateMetadata(absl::string_view id,
                                                 boost::json::object metadata);
  // false when there was no such conversation.
  bool Delete(absl::string_view id);

  std::optional<ConversationHistory> History(absl::string_view id);
  // Adds `items` at the end; false when there is no such conversation.
  bool Append(absl::string_view id, std::vector<ConversationItem> items);
  // Every item, oldest first.
  std::optional<boost::json::array> Items(absl::string_view id);

  enum class Lookup { kFound, kNoConversation, kNoItem };
  // The item `item_id` of conversation `id` into `item`.
  Lookup GetItem(absl::string_view id, absl::string_view item_id, boost::json::object* item);
  // Replaces the item `item_id` in place (the Assistants API modifies messages and runs).
  Lookup ReplaceItem(absl::string_view id, absl::string_view item_id, ConversationItem item);
  // Removes the item; `conversation` gets the conversation (kFound only).
  Lookup DeleteItem(absl::string_view id, absl::string_view item_id,
                    ConversationInfo* conversation);

  // Forgets every conversation (POST /mock/reset), and the eviction counts.
  void Clear();
  size_t size();
  uint64_t evicted();        // conversations evicted to make room
  uint64_t items_evicted();  // items dropped from conversations over the item or byte bound

 private:
  struct Record {
    ConversationInfo info;
    std::deque<ConversationItem> items;
    size_t cost = 0;     // the record and its metadata; items' costs are added to it
    uint64_t order = 0;  // key in order_
  };

  Record* FindLocked(absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AppendLocked(absl::string_view id, std::vector<ConversationItem> items)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropOldestItemLocked(Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes room after `id` grew: the oldest other conversations go first, then `id`'s oldest
  // items.
  void TrimLocked(absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  const size_t max_items_;
  const size_t byte_capacity_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);  // creation order -> id
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t items_evicted_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spillway::mock
