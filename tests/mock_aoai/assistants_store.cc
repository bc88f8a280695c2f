// See assistants_store.h. Objects are kept as the JSON the endpoints answer with, so a listing is
// a copy and nothing is rendered twice.
#include "tests/mock_aoai/assistants_store.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace spillway::mock {
namespace {

// The one record of AssistantsStore's list.
constexpr absl::string_view kList = "assistants";

}  // namespace

AssistantsStore::AssistantsStore(size_t capacity, size_t byte_capacity)
    : list_(/*capacity=*/1, capacity, byte_capacity) {}

void AssistantsStore::Put(boost::json::object assistant) {
  ConversationItem item = MakeConversationItem(std::move(assistant), "");
  // The list is made on first use (and again after a reset cleared it).
  if (!list_.Append(kList, {item})) {
    ConversationInfo info;
    info.id = std::string(kList);
    list_.Create(std::move(info), {std::move(item)});
  }
}

std::optional<boost::json::object> AssistantsStore::Get(absl::string_view id) {
  boost::json::object assistant;
  if (list_.GetItem(kList, id, &assistant) != ConversationsStore::Lookup::kFound) {
    return std::nullopt;
  }
  return assistant;
}

bool AssistantsStore::Replace(boost::json::object assistant) {
  ConversationItem item = MakeConversationItem(std::move(assistant), "");
  const std::string id = item.id;
  return list_.ReplaceItem(kList, id, std::move(item)) == ConversationsStore::Lookup::kFound;
}

bool AssistantsStore::Delete(absl::string_view id) {
  ConversationInfo unused;
  return list_.DeleteItem(kList, id, &unused) == ConversationsStore::Lookup::kFound;
}

boost::json::array AssistantsStore::All() {
  return list_.Items(kList).value_or(boost::json::array());
}

void AssistantsStore::Clear() { list_.Clear(); }

size_t AssistantsStore::size() {
  const std::optional<boost::json::array> all = list_.Items(kList);
  return all.has_value() ? all->size() : 0;
}

uint64_t AssistantsStore::evicted() { return list_.items_evicted(); }

ThreadsStore::ThreadsStore(size_t capacity, size_t max_items, size_t byte_capacity)
    : messages_(capacity, max_items, byte_capacity),
      // A run keeps its one step beside it.
      runs_(capacity, 2 * max_items, byte_capacity) {}

void ThreadsStore::Create(ThreadInfo thread, std::vector<ConversationItem> messages) {
  ConversationInfo runs_record;
  runs_record.id = thread.info.id;
  runs_record.created_at = thread.info.created_at;
  runs_record.metadata = std::move(thread.tool_resources);
  runs_.Create(std::move(runs_record), {});
  messages_.Create(std::move(thread.info), std::move(messages));
}

std::optional<ThreadInfo> ThreadsStore::Get(absl::string_view id) {
  std::optional<ConversationInfo> info = messages_.Get(id);
  if (!info.has_value()) {
    return std::nullopt;
  }
  ThreadInfo thread;
  thread.info = *std::move(info);
  if (std::optional<ConversationInfo> runs_record = runs_.Get(id)) {
    thread.tool_resources = std::move(runs_record->metadata);
  }
  return thread;
}

std::optional<ThreadInfo> ThreadsStore::Update(absl::string_view id,
                                               std::optional<boost::json::object> metadata,
                                               std::optional<boost::json::object> tool_resources) {
  if (metadata.has_value() && !messages_.UpdateMetadata(id, *std::move(metadata)).has_value()) {
    return std::nullopt;
  }
  if (tool_resources.has_value()) {
    runs_.UpdateMetadata(id, *std::move(tool_resources));
  }
  return Get(id);
}

bool ThreadsStore::Delete(absl::string_view id) {
  runs_.Delete(id);
  return messages_.Delete(id);
}

void ThreadsStore::Clear() {
  messages_.Clear();
  runs_.Clear();
}

std::string AssistantsCountsJson(AssistantsStore& assistants, ThreadsStore& threads) {
  return absl::StrCat(
      "\"assistants\":{\"stored\":", assistants.size(), ",\"evicted\":", assistants.evicted(),
      "},\"threads\":{\"stored\":", threads.size(), ",\"evicted\":", threads.evicted(),
      ",\"messages_evicted\":", threads.messages_evicted(), "}");
}

}  // namespace spillway::mock
