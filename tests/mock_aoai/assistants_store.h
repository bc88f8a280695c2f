// The Assistants API's state, per mock process as per Azure resource: assistants, threads with
// their messages, and the runs made on them. Built on ConversationsStore, whose bounds and
// oldest-first eviction are the ones wanted here too; an id made on one mock is unknown to every
// other, which is what tests of a gateway's pinning need to see.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/conversations_store.h"

namespace spillway::mock {

// The assistants, as the objects the API answers with, oldest first.
class AssistantsStore {
 public:
  // At most `capacity` assistants and about `byte_capacity` bytes of them.
  AssistantsStore(size_t capacity, size_t byte_capacity);

  // `assistant` carries its "id"; the oldest assistant goes when the store is full.
  void Put(boost::json::object assistant);
  // nullopt when unknown, deleted or evicted.
  std::optional<boost::json::object> Get(absl::string_view id);
  // Replaces the assistant with `assistant`'s id; false when there is none.
  bool Replace(boost::json::object assistant);
  bool Delete(absl::string_view id);
  boost::json::array All();  // oldest first

  void Clear();  // POST /mock/reset
  size_t size();
  uint64_t evicted();

 private:
  // One conversation whose items are the assistants: its item bound is the assistants' bound.
  ConversationsStore list_;
};

// A thread as its object shows it.
struct ThreadInfo {
  ConversationInfo info;               // id, created_at, metadata
  boost::json::object tool_resources;  // {} when none were given
};

// The threads: their messages (a conversation's items, so a run counts them as a Responses create
// in a conversation counts its history) and, apart, their runs and run steps.
class ThreadsStore {
 public:
  // At most `capacity` threads of at most `max_items` messages (and as many runs) each, and about
  // `byte_capacity` bytes of each kind.
  ThreadsStore(size_t capacity, size_t max_items, size_t byte_capacity);

  void Create(ThreadInfo thread, std::vector<ConversationItem> messages);
  std::optional<ThreadInfo> Get(absl::string_view id);
  // Replaces what is given; the thread as it is afterwards.
  std::optional<ThreadInfo> Update(absl::string_view id,
                                   std::optional<boost::json::object> metadata,
                                   std::optional<boost::json::object> tool_resources);
  bool Delete(absl::string_view id);

  // Keyed by thread id: its messages (thread.message objects), oldest first.
  ConversationsStore& messages() { return messages_; }
  // Keyed by thread id: its runs (thread.run) and their steps (thread.run.step), oldest first.
  // A thread's record here keeps the thread's tool_resources in its metadata slot.
  ConversationsStore& runs() { return runs_; }

  void Clear();  // POST /mock/reset
  size_t size() { return messages_.size(); }
  uint64_t evicted() { return messages_.evicted(); }
  uint64_t messages_evicted() { return messages_.items_evicted(); }

 private:
  ConversationsStore messages_;
  ConversationsStore runs_;
};

// "assistants":{"stored":N,"evicted":N},"threads":{"stored":N,"evicted":N,"messages_evicted":N}
// for GET /mock/stats.
std::string AssistantsCountsJson(AssistantsStore& assistants, ThreadsStore& threads);

}  // namespace spillway::mock
