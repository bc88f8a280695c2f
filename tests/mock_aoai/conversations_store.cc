// See conversations_store.h. Items are kept as JSON objects, the shape every endpoint answers
// with, so listing one is a copy and nothing is rendered twice.
#include "tests/mock_aoai/conversations_store.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::mock {
namespace {

// The bytes a record is charged beyond its items and metadata (ids, the record, map entries).
constexpr size_t kRecordOverhead = 512;
constexpr size_t kItemOverhead = 128;

size_t Cost(const boost::json::object& object) { return boost::json::serialize(object).size(); }

}  // namespace

ConversationItem MakeConversationItem(boost::json::object item, absl::string_view text) {
  ConversationItem made;
  if (const boost::json::value* id = item.if_contains("id"); id != nullptr && id->is_string()) {
    made.id = std::string(id->get_string());
  }
  made.tokens = EstimateTextTokens(text);
  made.hash = Fnv1a(kFnvOffset, text);
  made.cost = Cost(item) + made.id.size() + kItemOverhead;
  made.item = std::move(item);
  return made;
}

ConversationItem MakeOutputItem(boost::json::object item, int64_t tokens) {
  // The mock's output text is a function of its length: the length is the text's identity.
  ConversationItem made = MakeConversationItem(std::move(item), "");
  made.tokens = tokens;
  made.hash = Fnv1a(kFnvOffset, absl::StrCat("output:", tokens));
  return made;
}

ConversationsStore::ConversationsStore(size_t capacity, size_t max_items, size_t byte_capacity)
    : capacity_(std::max<size_t>(1, capacity)),
      max_items_(std::max<size_t>(1, max_items)),
      byte_capacity_(byte_capacity) {}

void ConversationsStore::Create(ConversationInfo info, std::vector<ConversationItem> items) {
  const std::string id = info.id;
  Record record;
  record.cost = kRecordOverhead + id.size() + Cost(info.metadata);
  record.info = std::move(info);
  absl::MutexLock lock(&mu_);
  EraseLocked(id);  // ids are random; a repeat would only come from a test
  while (!order_.empty() &&
         (records_.size() >= capacity_ || bytes_ + record.cost > byte_capacity_)) {
    const std::string oldest = order_.begin()->second;  // EraseLocked frees the original
    EraseLocked(oldest);
    ++evicted_;
  }
  record.order = next_order_++;
  order_.emplace(record.order, id);
  bytes_ += record.cost;
  records_.emplace(id, std::move(record));
  AppendLocked(id, std::move(items));
}

std::optional<ConversationInfo> ConversationsStore::Get(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  const Record* record = FindLocked(id);
  if (record == nullptr) {
    return std::nullopt;
  }
  return record->info;
}

std::optional<ConversationInfo> ConversationsStore::UpdateMetadata(absl::string_view id,
                                                                   boost::json::object metadata) {
  absl::MutexLock lock(&mu_);
  Record* record = FindLocked(id);
  if (record == nullptr) {
    return std::nullopt;
  }
  const size_t before = Cost(record->info.metadata);
  const size_t after = Cost(metadata);
  record->info.metadata = std::move(metadata);
  record->cost = record->cost - before + after;
  bytes_ = bytes_ - before + after;
  ConversationInfo info = record->info;
  TrimLocked(id);
  return info;
}

bool ConversationsStore::Delete(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  if (FindLocked(id) == nullptr) {
    return false;
  }
  EraseLocked(id);
  return true;
}

std::optional<ConversationHistory> ConversationsStore::History(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  const Record* record = FindLocked(id);
  if (record == nullptr) {
    return std::nullopt;
  }
  ConversationHistory history;
  history.hash = kFnvOffset;
  for (const ConversationItem& item : record->items) {
    history.tokens += item.tokens;
    history.hash = Fnv1a(history.hash, absl::string_view(reinterpret_cast<const char*>(&item.hash),
                                                         sizeof(item.hash)));
  }
  return history;
}

bool ConversationsStore::Append(absl::string_view id, std::vector<ConversationItem> items) {
  absl::MutexLock lock(&mu_);
  return AppendLocked(id, std::move(items));
}

std::optional<boost::json::array> ConversationsStore::Items(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  const Record* record = FindLocked(id);
  if (record == nullptr) {
    return std::nullopt;
  }
  boost::json::array items;
  items.reserve(record->items.size());
  for (const ConversationItem& item : record->items) {
    items.emplace_back(item.item);
  }
  return items;
}

ConversationsStore::Lookup ConversationsStore::GetItem(absl::string_view id,
                                                       absl::string_view item_id,
                                                       boost::json::object* item) {
  absl::MutexLock lock(&mu_);
  const Record* record = FindLocked(id);
  if (record == nullptr) {
    return Lookup::kNoConversation;
  }
  for (const ConversationItem& candidate : record->items) {
    if (candidate.id == item_id) {
      *item = candidate.item;
      return Lookup::kFound;
    }
  }
  return Lookup::kNoItem;
}

ConversationsStore::Lookup ConversationsStore::ReplaceItem(absl::string_view id,
                                                           absl::string_view item_id,
                                                           ConversationItem item) {
  absl::MutexLock lock(&mu_);
  Record* record = FindLocked(id);
  if (record == nullptr) {
    return Lookup::kNoConversation;
  }
  const auto it = std::find_if(record->items.begin(), record->items.end(),
                               [&](const ConversationItem& old) { return old.id == item_id; });
  if (it == record->items.end()) {
    return Lookup::kNoItem;
  }
  record->cost = record->cost - it->cost + item.cost;
  bytes_ = bytes_ - it->cost + item.cost;
  *it = std::move(item);
  TrimLocked(id);
  return Lookup::kFound;
}

ConversationsStore::Lookup ConversationsStore::DeleteItem(absl::string_view id,
                                                          absl::string_view item_id,
                                                          ConversationInfo* conversation) {
  absl::MutexLock lock(&mu_);
  Record* record = FindLocked(id);
  if (record == nullptr) {
    return Lookup::kNoConversation;
  }
  const auto it = std::find_if(record->items.begin(), record->items.end(),
                               [&](const ConversationItem& item) { return item.id == item_id; });
  if (it == record->items.end()) {
    return Lookup::kNoItem;
  }
  record->cost -= it->cost;
  bytes_ -= it->cost;
  record->items.erase(it);
  *conversation = record->info;
  return Lookup::kFound;
}

void ConversationsStore::Clear() {
  absl::MutexLock lock(&mu_);
  records_.clear();
  order_.clear();
  bytes_ = 0;
  evicted_ = 0;
  items_evicted_ = 0;
}

size_t ConversationsStore::size() {
  absl::MutexLock lock(&mu_);
  return records_.size();
}

uint64_t ConversationsStore::evicted() {
  absl::MutexLock lock(&mu_);
  return evicted_;
}

uint64_t ConversationsStore::items_evicted() {
  absl::MutexLock lock(&mu_);
  return items_evicted_;
}

ConversationsStore::Record* ConversationsStore::FindLocked(absl::string_view id) {
  const auto it = records_.find(id);
  return it == records_.end() ? nullptr : &it->second;
}

void ConversationsStore::EraseLocked(absl::string_view id) {
  const auto it = records_.find(id);
  if (it == records_.end()) {
    return;
  }
  order_.erase(it->second.order);
  bytes_ -= it->second.cost;
  records_.erase(it);
}

bool ConversationsStore::AppendLocked(absl::string_view id, std::vector<ConversationItem> items) {
  Record* record = FindLocked(id);
  if (record == nullptr) {
    return false;
  }
  for (ConversationItem& item : items) {
    record->cost += item.cost;
    bytes_ += item.cost;
    record->items.push_back(std::move(item));
  }
  TrimLocked(id);
  return true;
}

void ConversationsStore::DropOldestItemLocked(Record& record) {
  record.cost -= record.items.front().cost;
  bytes_ -= record.items.front().cost;
  record.items.pop_front();
  ++items_evicted_;
}

void ConversationsStore::TrimLocked(absl::string_view id) {
  Record* record = FindLocked(id);
  while (record->items.size() > max_items_) {
    DropOldestItemLocked(*record);
  }
  while (bytes_ > byte_capacity_ && order_.size() > 1) {
    auto oldest = order_.begin();
    if (oldest->first == record->order) {
      ++oldest;
    }
    const std::string victim = oldest->second;  // EraseLocked frees the original
    EraseLocked(victim);
    ++evicted_;
    record = FindLocked(id);  // looked up again rather than lean on the map's pointer rules
  }
  while (bytes_ > byte_capacity_ && !record->items.empty()) {
    DropOldestItemLocked(*record);
  }
}

}  // namespace spillway::mock
