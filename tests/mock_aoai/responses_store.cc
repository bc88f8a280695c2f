// See responses_store.h. Status is computed when read, from the clock, instead of by timers: a
// background response "completes" without any thread touching it, and tests that step the
// clock see it do so.
#include "tests/mock_aoai/responses_store.h"

#include <algorithm>
#include <utility>

namespace spillway::mock {

absl::string_view ResponseStatusName(ResponseStatus status) {
  switch (status) {
    case ResponseStatus::kQueued:
      return "queued";
    case ResponseStatus::kInProgress:
      return "in_progress";
    case ResponseStatus::kCompleted:
      return "completed";
    case ResponseStatus::kIncomplete:
      return "incomplete";
    case ResponseStatus::kCancelled:
      return "cancelled";
  }
  return "failed";
}

ResponsesStore::ResponsesStore(size_t capacity, size_t byte_capacity, Clock clock)
    : capacity_(std::max<size_t>(1, capacity)),
      byte_capacity_(byte_capacity),
      clock_(std::move(clock)) {}

void ResponsesStore::Put(std::shared_ptr<const ResponseFacts> facts, size_t cost, absl::Time start,
                         absl::Time done_at) {
  const std::string id = facts->id;
  absl::MutexLock lock(&mu_);
  EraseLocked(id);  // ids are random; a repeat would only come from a test reusing facts
  while (!order_.empty() && (records_.size() >= capacity_ || bytes_ + cost > byte_capacity_)) {
    const std::string oldest = order_.begin()->second;  // EraseLocked frees the original
    EraseLocked(oldest);
    ++evicted_;
  }
  Record record;
  record.facts = std::move(facts);
  record.cost = cost;
  record.order = next_order_++;
  record.start = start;
  record.done_at = std::max(start, done_at);
  order_.emplace(record.order, id);
  bytes_ += cost;
  records_.emplace(id, std::move(record));
}

std::optional<ResponseSnapshot> ResponsesStore::Get(absl::string_view id) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  const auto it = records_.find(id);
  if (it == records_.end()) {
    return std::nullopt;
  }
  return SnapshotLocked(it->second, now);
}

bool ResponsesStore::Delete(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  if (!records_.contains(id)) {
    return false;
  }
  EraseLocked(id);
  return true;
}

ResponsesStore::CancelOutcome ResponsesStore::Cancel(absl::string_view id,
                                                     ResponseSnapshot* snapshot) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  const auto it = records_.find(id);
  if (it == records_.end()) {
    return CancelOutcome::kNotFound;
  }
  Record& record = it->second;
  CancelOutcome outcome = CancelOutcome::kAlreadyDone;
  if (!record.facts->background) {
    outcome = CancelOutcome::kNotBackground;
  } else if (!record.cancelled && now < record.done_at) {
    record.cancelled = true;
    record.done_at = now;
    outcome = CancelOutcome::kCancelled;
  }
  *snapshot = SnapshotLocked(record, now);
  return outcome;
}

void ResponsesStore::Clear() {
  absl::MutexLock lock(&mu_);
  records_.clear();
  order_.clear();
  bytes_ = 0;
  evicted_ = 0;
}

size_t ResponsesStore::size() {
  absl::MutexLock lock(&mu_);
  return records_.size();
}

uint64_t ResponsesStore::evicted() {
  absl::MutexLock lock(&mu_);
  return evicted_;
}

ResponseSnapshot ResponsesStore::SnapshotLocked(const Record& record, absl::Time now) const {
  ResponseSnapshot snapshot;
  snapshot.facts = record.facts;
  snapshot.done_at = record.done_at;
  snapshot.completed_at = absl::ToUnixSeconds(record.done_at);
  if (record.cancelled) {
    snapshot.status = ResponseStatus::kCancelled;
  } else if (now >= record.done_at) {
    snapshot.status = record.facts->final_status();
  } else if (record.facts->background && now < record.start + (record.done_at - record.start) / 2) {
    snapshot.status = ResponseStatus::kQueued;
  } else {
    snapshot.status = ResponseStatus::kInProgress;
  }
  return snapshot;
}

void ResponsesStore::EraseLocked(absl::string_view id) {
  const auto it = records_.find(id);
  if (it == records_.end()) {
    return;
  }
  order_.erase(it->second.order);
  bytes_ -= it->second.cost;
  records_.erase(it);
}

}  // namespace spillway::mock
