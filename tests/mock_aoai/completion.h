// Response bodies in Azure OpenAI's shape: chat and text completions, embeddings, and the SSE
// events of a streamed completion, generated one at a time so a stream holds no prebuilt body.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tests/mock_aoai/event_stream.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/stats.h"

namespace spillway::mock {

// Everything a body depends on; `model` must outlive the bodies and streams built from it.
struct CompletionFacts {
  Operation op = Operation::kChatCompletions;
  absl::string_view model;
  char id[48] = {};  // "chatcmpl-..." / "cmpl-...", NUL-terminated
  int64_t created = 0;
  int64_t choices = 1;
  int64_t tokens_per_choice = 0;
  bool truncated = false;  // finish_reason "length" rather than "stop"
  Usage usage;
};

// Fills id (random, with the operation's prefix) and created.
void StampCompletion(CompletionFacts& facts, int64_t unix_seconds);

// The text of output token `index`: a fixed sentence of words, repeated.
absl::string_view OutputToken(int64_t index);

void AppendChatCompletion(std::string& out, const CompletionFacts& facts);
void AppendTextCompletion(std::string& out, const CompletionFacts& facts);
// `dimensions` values per input, a pure function of each input's hash.
void AppendEmbeddings(std::string& out, absl::string_view model,
                      absl::Span<const uint64_t> input_hashes, int64_t dimensions,
                      const Usage& usage);

// The events of one streamed completion, in order: prompt_filter_results with empty choices;
// one delta per output token and choice (the first of a choice carries the role); a chunk with
// finish_reason per choice; the usage chunk when asked for; `[DONE]`.
class SseStream final : public EventStream {
 public:
  SseStream(const CompletionFacts& facts, bool include_usage);

  bool Done() const override { return phase_ == Phase::kEnd; }
  bool NextStartsLaterToken() const override {
    return phase_ == Phase::kTokens && choice_ == 0 && token_ > 0;
  }
  // Appends the next event, `data: ...\n\n`.
  void AppendNext(std::string& out) override;
  bool usage_sent() const override { return usage_sent_; }
  int64_t events_sent() const override { return events_sent_; }

 private:
  enum class Phase { kPromptFilter, kTokens, kFinish, kUsage, kDone, kEnd };

  CompletionFacts facts_;
  bool include_usage_;
  Phase phase_ = Phase::kPromptFilter;
  int64_t token_ = 0;
  int64_t choice_ = 0;
  int64_t events_sent_ = 0;
  bool usage_sent_ = false;
};

}  // namespace spillway::mock
