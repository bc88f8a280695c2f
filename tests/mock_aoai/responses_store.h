// The Responses API's state, per mock process as per Azure resource: the responses this mock
// created and stored, kept in memory, bounded by count and by bytes (oldest evicted first). An
// id created on one mock is unknown to every other, which is what tests of a gateway's
// follow-up routing need to see.
#pragma once

#include <boost/json/array.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/rate_limiter.h"

namespace spillway::mock {

enum class ResponseStatus { kQueued, kInProgress, kCompleted, kIncomplete, kCancelled };

// "queued", "in_progress", "completed", "incomplete", "cancelled": the wire names.
absl::string_view ResponseStatusName(ResponseStatus status);

// What a response is, fixed when it is created; shared (immutable) by the store and by the
// streams that render it, so a stream outlives a DELETE or an eviction of its record.
struct ResponseFacts {
  std::string id;          // "resp_<32 hex>"
  std::string message_id;  // "msg_<32 hex>": the one output message
  std::string deployment;
  std::string model;  // the deployment's model, as the object names it
  int64_t created_at = 0;
  std::optional<std::string> instructions;
  std::optional<std::string> previous_response_id;
  std::optional<std::string> conversation_id;  // the conversation it was created in
  std::optional<int64_t> max_output_tokens;
  bool store = true;
  bool background = false;
  int64_t input_tokens = 0;  // this turn's context: earlier turns' input and output, and its own
  int64_t cached_tokens = 0;
  int64_t output_tokens = 0;
  bool truncated = false;          // cut short by max_output_tokens: status "incomplete"
  uint64_t context_hash = 0;       // the whole conversation's prompt, for the prompt cache
  boost::json::array input_items;  // this turn's input, as input_items lists it (with ids)

  // Where generation ends when nobody cancels it.
  ResponseStatus final_status() const {
    return truncated ? ResponseStatus::kIncomplete : ResponseStatus::kCompleted;
  }
};

// A stored response as of one moment.
struct ResponseSnapshot {
  std::shared_ptr<const ResponseFacts> facts;
  ResponseStatus status = ResponseStatus::kQueued;
  absl::Time done_at;        // when generation ends (or ended, or was cancelled)
  int64_t completed_at = 0;  // unix seconds; meaningful once the status is terminal

  bool terminal() const {
    return status != ResponseStatus::kQueued && status != ResponseStatus::kInProgress;
  }
};

class ResponsesStore {
 public:
  // At most `capacity` responses and about `byte_capacity` bytes of them.
  ResponsesStore(size_t capacity, size_t byte_capacity, Clock clock);

  // Keeps `facts` (whose `cost` in bytes counts against the byte bound); generation runs from
  // `start` to `done_at`. A background response is "queued" for the first half of that time,
  // then "in_progress"; any other is "in_progress" until `done_at` (a stream being written).
  void Put(std::shared_ptr<const ResponseFacts> facts, size_t cost, absl::Time start,
           absl::Time done_at);
  // The response with its status now; nullopt when unknown, deleted or evicted.
  std::optional<ResponseSnapshot> Get(absl::string_view id);
  // false when there was no such response.
  bool Delete(absl::string_view id);

  enum class CancelOutcome { kNotFound, kNotBackground, kCancelled, kAlreadyDone };
  // Cancels a background response still being generated; `snapshot` gets the response as it
  // is afterwards (unless kNotFound).
  CancelOutcome Cancel(absl::string_view id, ResponseSnapshot* snapshot);

  // Forgets every response (POST /mock/reset), and the eviction count.
  void Clear();
  size_t size();
  uint64_t evicted();

 private:
  struct Record {
    std::shared_ptr<const ResponseFacts> facts;
    size_t cost = 0;
    uint64_t order = 0;  // key in order_
    absl::Time start;
    absl::Time done_at;
    bool cancelled = false;
  };

  ResponseSnapshot SnapshotLocked(const Record& record, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(absl::string_view id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  const size_t byte_capacity_;
  const Clock clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Record> records_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> order_ ABSL_GUARDED_BY(mu_);  // creation order -> id
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spillway::mock
