// See request_plan.h.
#include "tools/load/request_plan.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace spillway::load {
namespace {

// Sixteen common words, each " xyz": four code points, so one mock token, and one token in
// cl100k_base and o200k_base (their pre-tokenizer splits before each space-led word, and each
// of these is in both vocabularies). A word is a hex digit when spelling a sequence number.
constexpr const char* kWords[16] = {" the", " and", " for", " you", " are", " not", " was", " but",
                                    " all", " can", " one", " new", " has", " her", " our", " day"};
// 16^8: sequence numbers up to 4 billion get distinct first words.
constexpr int kSequenceWords = 8;

}  // namespace

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

std::pair<size_t, size_t> Combination(int64_t index, size_t keys, size_t routes) {
  const size_t combination = static_cast<size_t>(index) % (keys * routes);
  return {combination / routes, combination % routes};
}

RequestPlanner::RequestPlanner(const LoadOptions& options)
    : options_(options), prompt_(options.prompt_tokens), completion_(options.completion_tokens) {}

PlannedRequest RequestPlanner::Next() {
  PlannedRequest planned;
  planned.index = next_index_++;
  planned.stream = Streams(planned.index, options_.stream_share);
  planned.prompt_tokens = prompt_.Next(random_);
  planned.max_tokens = completion_.Next(random_);
  std::tie(planned.key, planned.route) =
      Combination(planned.index, std::max<size_t>(options_.api_keys.size(), 1),
                  std::max<size_t>(options_.routes.size(), 1));
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
      "POST /openai/deployments/", options.routes.at(planned.route),
      "/chat/completions?api-version=2024-10-21 HTTP/1.1\r\nHost: ", options.address.host_header,
      "\r\napi-key: ", options.api_keys.at(planned.key).key,
      "\r\nContent-Type: application/json\r\nAccept: ",
      planned.stream ? "text/event-stream" : "application/json",
      "\r\nUser-Agent: spillwayctl-load\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

}  // namespace spillway::load
