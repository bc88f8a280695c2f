// A bounded, thread-safe map of one stateful API's objects by id, in creation order (files,
// batches, vector stores): past its count or byte bound the oldest go first, as the responses
// and conversations stores evict. Values are copied out, so a T holds big parts by shared_ptr.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace spillway::mock {

// T has `std::string id` and `size_t Cost() const` (bytes it is charged against the bound).
template <class T>
class IdStore {
 public:
  IdStore(size_t capacity, size_t byte_capacity)
      : capacity_(std::max<size_t>(1, capacity)), byte_capacity_(byte_capacity) {}

  void Put(T value) {
    const size_t cost = value.Cost();
    absl::MutexLock lock(&mu_);
    EraseLocked(value.id);
    while (!order_.empty() && (records_.size() >= capacity_ || bytes_ + cost > byte_capacity_)) {
      const std::string oldest = order_.begin()->second;  // EraseLocked frees the original
      EraseLocked(oldest);
      ++evicted_;
    }
    const uint64_t order = next_order_++;
    order_.emplace(order, value.id);
    bytes_ += cost;
    std::string id = value.id;
    records_.emplace(std::move(id), Record{std::move(value), cost, order});
  }

  std::optional<T> Get(absl::string_view id) {
    absl::MutexLock lock(&mu_);
    const auto it = records_.find(id);
    if (it == records_.end()) {
      return std::nullopt;
    }
    return it->second.value;
  }

  // Runs `change` on the stored value under the lock and returns the value afterwards; nullopt
  // when there is none. The value's cost is charged anew (it is never evicted for it).
  std::optional<T> Update(absl::string_view id, const std::function<void(T&)>& change) {
    absl::MutexLock lock(&mu_);
    const auto it = records_.find(id);
    if (it == records_.end()) {
      return std::nullopt;
    }
    change(it->second.value);
    const size_t cost = it->second.value.Cost();
    bytes_ = bytes_ - it->second.cost + cost;
    it->second.cost = cost;
    return it->second.value;
  }

  bool Erase(absl::string_view id) {
    absl::MutexLock lock(&mu_);
    if (!records_.contains(id)) {
      return false;
    }
    EraseLocked(id);
    return true;
  }

  // Every value that `keep` accepts (all when it is empty), oldest first.
  std::vector<T> All(const std::function<bool(const T&)>& keep = {}) {
    absl::MutexLock lock(&mu_);
    std::vector<T> all;
    all.reserve(order_.size());
    for (const auto& [order, id] : order_) {
      const T& value = records_.find(id)->second.value;
      if (!keep || keep(value)) {
        all.push_back(value);
      }
    }
    return all;
  }

  void Clear() {
    absl::MutexLock lock(&mu_);
    records_.clear();
    order_.clear();
    bytes_ = 0;
    evicted_ = 0;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return records_.size();
  }
  size_t bytes() {
    absl::MutexLock lock(&mu_);
    return bytes_;
  }
  uint64_t evicted() {
    absl::MutexLock lock(&mu_);
    return evicted_;
  }

 private:
  struct Record {
    T value;
    size_t cost = 0;
    uint64_t order = 0;  // key in order_
  };

  void EraseLocked(absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto it = records_.find(id);
    if (it == records_.end()) {
      return;
    }
    order_.erase(it->second.order);
    bytes_ -= it->second.cost;
    records_.erase(it);
  }

  const size_t capacity_;
  const size_t byte_capacity_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);  // creation order -> id
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spillway::mock
