// See completion.h. Bodies are appended as text in Azure's field order (alphabetical, as the
// service serializes them); nothing here allocates beyond the output buffer.
#include "tests/mock_aoai/completion.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

constexpr absl::string_view kWords[] = {"Hello",  " from",   " the", " Spillway", " mock", " of",
                                        " Azure", " OpenAI", ":",    " tokens",   " are",  " words",
                                        " and",   " words",  " are", " tokens."};
constexpr int64_t kWordCount = sizeof(kWords) / sizeof(kWords[0]);

constexpr absl::string_view kSystemFingerprint = "fp_spillwaymock";
constexpr absl::string_view kFilterResults =
    "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}";
constexpr absl::string_view kPromptFilterResults =
    "[{\"prompt_index\":0,\"content_filter_results\":{"
    "\"hate\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"jailbreak\":{\"filtered\":false,\"detected\":false},"
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}]";

// Chunks open with "choices"; the other fields follow it, in Azure's alphabetical order.
constexpr absl::string_view kChunkOpen = "data: {\"choices\":[";

void AppendUsage(std::string& out, const Usage& usage) {
  absl::StrAppend(&out, "{\"completion_tokens\":", usage.completion_tokens,
                  ",\"completion_tokens_details\":{\"accepted_prediction_tokens\":0,"
                  "\"audio_tokens\":0,\"reasoning_tokens\":0,\"rejected_prediction_tokens\":0},"
                  "\"prompt_tokens\":",
                  usage.prompt_tokens,
                  ",\"prompt_tokens_details\":{\"audio_tokens\":0,\"cached_tokens\":",
                  usage.cached_tokens, "},\"total_tokens\":", usage.total_tokens, "}");
}

void AppendContent(std::string& out, int64_t tokens) {
  out += '"';
  for (int64_t i = 0; i < tokens; ++i) {
    absl::StrAppend(&out, OutputToken(i));  // the vocabulary needs no JSON escaping
  }
  out += '"';
}

absl::string_view FinishReason(const CompletionFacts& facts) {
  return facts.truncated ? "length" : "stop";
}

// splitmix64: a well-mixed pure function of its input.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

void StampCompletion(CompletionFacts& facts, int64_t unix_seconds) {
  std::string id = facts.op == Operation::kChatCompletions ? "chatcmpl-" : "cmpl-";
  AppendRandomId(id, 29);
  std::snprintf(facts.id, sizeof(facts.id), "%s", id.c_str());
  facts.created = unix_seconds;
}

absl::string_view OutputToken(int64_t index) { return kWords[index % kWordCount]; }

void AppendChatCompletion(std::string& out, const CompletionFacts& facts) {
  out += "{\"choices\":[";
  for (int64_t c = 0; c < facts.choices; ++c) {
    absl::StrAppend(&out, c == 0 ? "" : ",", "{\"content_filter_results\":", kFilterResults,
                    ",\"finish_reason\":\"", FinishReason(facts), "\",\"index\":", c,
                    ",\"logprobs\":null,\"message\":{\"content\":");
    AppendContent(out, facts.tokens_per_choice);
    out += ",\"refusal\":null,\"role\":\"assistant\"}}";
  }
  absl::StrAppend(&out, "],\"created\":", facts.created, ",\"id\":\"", facts.id, "\",\"model\":");
  AppendJsonString(out, facts.model);
  absl::StrAppend(
      &out, ",\"object\":\"chat.completion\",\"prompt_filter_results\":", kPromptFilterResults,
      ",\"system_fingerprint\":\"", kSystemFingerprint, "\",\"usage\":");
  AppendUsage(out, facts.usage);
  out += '}';
}

void AppendTextCompletion(std::string& out, const CompletionFacts& facts) {
  out += "{\"choices\":[";
  for (int64_t c = 0; c < facts.choices; ++c) {
    absl::StrAppend(&out, c == 0 ? "" : ",", "{\"content_filter_results\":", kFilterResults,
                    ",\"finish_reason\":\"", FinishReason(facts), "\",\"index\":", c,
                    ",\"logprobs\":null,\"text\":");
    AppendContent(out, facts.tokens_per_choice);
    out += '}';
  }
  absl::StrAppend(&out, "],\"created\":", facts.created, ",\"id\":\"", facts.id, "\",\"model\":");
  AppendJsonString(out, facts.model);
  absl::StrAppend(
      &out, ",\"object\":\"text_completion\",\"prompt_filter_results\":", kPromptFilterResults,
      ",\"system_fingerprint\":\"", kSystemFingerprint, "\",\"usage\":");
  AppendUsage(out, facts.usage);
  out += '}';
}

void AppendEmbeddings(std::string& out, absl::string_view model,
                      absl::Span<const uint64_t> input_hashes, int64_t dimensions,
                      const Usage& usage) {
  out += "{\"data\":[";
  for (size_t i = 0; i < input_hashes.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"embedding\":[");
    for (int64_t d = 0; d < dimensions; ++d) {
      // Uniform in [-1, 1), a pure function of (input, dimension).
      const double value =
          static_cast<double>(Mix(input_hashes[i] + static_cast<uint64_t>(d)) >> 11) /
              static_cast<double>(1ull << 52) -
          1.0;
      absl::StrAppend(&out, d == 0 ? "" : ",", absl::StrFormat("%.6f", value));
    }
    absl::StrAppend(&out, "],\"index\":", i, ",\"object\":\"embedding\"}");
  }
  out += "],\"model\":";
  AppendJsonString(out, model);
  absl::StrAppend(&out, ",\"object\":\"list\",\"usage\":{\"prompt_tokens\":", usage.prompt_tokens,
                  ",\"total_tokens\":", usage.total_tokens, "}}");
}

SseStream::SseStream(const CompletionFacts& facts, bool include_usage)
    : facts_(facts), include_usage_(include_usage) {}

void SseStream::AppendNext(std::string& out) {
  const bool chat = facts_.op == Operation::kChatCompletions;
  const absl::string_view object = chat ? "chat.completion.chunk" : "text_completion";
  auto close_chunk = [&](bool with_usage) {
    absl::StrAppend(&out, "],\"created\":", facts_.created, ",\"id\":\"", facts_.id,
                    "\",\"model\":");
    AppendJsonString(out, facts_.model);
    absl::StrAppend(&out, ",\"object\":\"", object, "\",\"system_fingerprint\":\"",
                    kSystemFingerprint, "\"");
    if (with_usage) {
      out += ",\"usage\":";
      AppendUsage(out, facts_.usage);
    }
    out += "}\n\n";
  };

  switch (phase_) {
    case Phase::kPromptFilter:
      // Azure's first event: no id or model yet, only the prompt's filter results.
      absl::StrAppend(&out,
                      "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\","
                      "\"object\":\"\",\"prompt_filter_results\":",
                      kPromptFilterResults, "}\n\n");
      phase_ = facts_.tokens_per_choice > 0 ? Phase::kTokens : Phase::kFinish;
      break;
    case Phase::kTokens: {
      absl::StrAppend(&out, kChunkOpen);
      absl::StrAppend(&out, "{\"content_filter_results\":", kFilterResults, ",");
      if (chat) {
        out += "\"delta\":{\"content\":";
        AppendJsonString(out, OutputToken(token_));
        if (token_ == 0) {
          out += ",\"role\":\"assistant\"";
        }
        out += "},";
      }
      absl::StrAppend(&out, "\"finish_reason\":null,\"index\":", choice_, ",\"logprobs\":null");
      if (!chat) {
        out += ",\"text\":";
        AppendJsonString(out, OutputToken(token_));
      }
      out += '}';
      close_chunk(false);
      if (++choice_ == facts_.choices) {
        choice_ = 0;
        if (++token_ == facts_.tokens_per_choice) {
          phase_ = Phase::kFinish;
        }
      }
      break;
    }
    case Phase::kFinish:
      absl::StrAppend(&out, kChunkOpen);
      absl::StrAppend(&out, "{\"content_filter_results\":{},", chat ? "\"delta\":{}," : "",
                      "\"finish_reason\":\"", FinishReason(facts_), "\",\"index\":", choice_,
                      ",\"logprobs\":null", chat ? "" : ",\"text\":\"\"", "}");
      close_chunk(false);
      if (++choice_ == facts_.choices) {
        choice_ = 0;
        phase_ = include_usage_ ? Phase::kUsage : Phase::kDone;
      }
      break;
    case Phase::kUsage:
      absl::StrAppend(&out, kChunkOpen);
      close_chunk(true);
      usage_sent_ = true;
      phase_ = Phase::kDone;
      break;
    case Phase::kDone:
      out += "data: [DONE]\n\n";
      phase_ = Phase::kEnd;
      break;
    case Phase::kEnd:
      return;
  }
  ++events_sent_;
}

}  // namespace spillway::mock
