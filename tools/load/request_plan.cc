// See request_plan.h.
#include "tools/load/request_plan.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace spillway::load {
namespace {

constexpr int64_t kNanosPerMinute = int64_t{60'000'000'000};

// Sixteen common words, each " xyz": four code points, so one mock token, and one token in
// cl100k_base and o200k_base (their pre-tokenizer splits before each space-led word, and each
// of these is in both vocabularies). A word is a hex digit when spelling a sequence number.
constexpr const char* kWords[16] = {" the", " and", " for", " you", " are", " not", " was", " but",
                                    " all", " can", " one", " new", " has", " her", " our", " day"};
// 16^8: sequence numbers up to 4 billion get distinct first words.
constexpr int kSequenceWords = 8;

}  // namespace

int64_t RequestCount(int64_t rpm, std::chrono::nanoseconds duration) {
  // Requests i with i * 60 s / rpm < duration: ceil(duration * rpm / 60 s), in 128 bits
  // (24 h at kMaxRpm is 5e27 ns-requests).
  const __int128 product = static_cast<__int128>(duration.count()) * rpm;
  return static_cast<int64_t>((product + kNanosPerMinute - 1) / kNanosPerMinute);
}

std::chrono::nanoseconds DueOffset(int64_t index, int64_t rpm) {
  // From the index, not by adding an interval: no rounding error builds up over a long run.
  const __int128 product = static_cast<__int128>(index) * kNanosPerMinute;
  return std::chrono::nanoseconds(static_cast<int64_t>(product / rpm));
}

bool Streams(int64_t index, double share) {
  // Request i streams when floor((i + 1) * share) steps up: the first n requests then hold
  // floor(n * share) streams, whatever n is.
  return std::floor(static_cast<double>(index + 1) * share) >
         std::floor(static_cast<double>(index) * share);
}

std::string BuildPrompt(int64_t tokens, uint64_t sequence) {
  std::string prompt;
  prompt.reserve(static_cast<size_t>(tokens) * 4);
  for (int64_t i = 0; i < tokens; ++i) {
    if (i < kSequenceWords) {
      prompt += kWords[sequence & 15];
      sequence >>= 4;
    } else {
      prompt += kWords[i & 15];
    }
  }
  return prompt;
}

RequestPlanner::RequestPlanner(const LoadOptions& options) : options_(options) {}

int64_t RequestPlanner::Draw(const TokenRange& range) {
  if (range.fixed()) {
    return range.min;
  }
  return std::uniform_int_distribution<int64_t>(range.min, range.max)(random_);
}

PlannedRequest RequestPlanner::Next() {
  PlannedRequest planned;
  planned.index = next_index_++;
  planned.stream = Streams(planned.index, options_.stream_share);
  planned.prompt_tokens = Draw(options_.prompt_tokens);
  planned.max_tokens = Draw(options_.completion_tokens);
  return planned;
}

std::string BuildHttpRequest(const LoadOptions& options, const PlannedRequest& planned) {
  // The prompt's words need no JSON escaping.
  std::string body = absl::StrCat(
      R"({"messages":[{"role":"user","content":")",
      BuildPrompt(planned.prompt_tokens, static_cast<uint64_t>(planned.index)),
      R"("}],"max_tokens":)", planned.max_tokens,
      planned.stream ? R"(,"stream":true,"stream_options":{"include_usage":true}})" : "}");
  return absl::StrCat(
      "POST /openai/deployments/", options.route,
      "/chat/completions?api-version=2024-10-21 HTTP/1.1\r\nHost: ", options.address.host_header,
      "\r\napi-key: ", options.api_key, "\r\nContent-Type: application/json\r\nAccept: ",
      planned.stream ? "text/event-stream" : "application/json",
      "\r\nUser-Agent: spillwayctl-load\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

}  // namespace spillway::load
