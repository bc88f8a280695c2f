// The SSE usage stripper and the include_usage injection: the client gets exactly the bytes
// Azure would have sent without stream_options.include_usage, however the stream is cut
// into reads.
#include "dataplane/usage/sse_usage_stripper.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "dataplane/usage/stream_usage.h"
#include "dataplane/usage/usage_scanner.h"

namespace spillway {
namespace {

constexpr char kFilter[] =
    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
    "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n";
constexpr char kDelta[] =
    "data: {\"choices\":[{\"delta\":{\"content\":\"usage\"},\"finish_reason\":null,\"index\":0}],"
    "\"id\":\"c1\",\"object\":\"chat.completion.chunk\"}\n\n";
constexpr char kFinish[] =
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}],\"id\":\"c1\","
    "\"object\":\"chat.completion.chunk\"}\n\n";
constexpr char kUsage[] =
    "data: {\"choices\":[],\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"usage\":"
    "{\"completion_tokens\":3,\"prompt_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":0},"
    "\"total_tokens\":10}}\n\n";
constexpr char kDone[] = "data: [DONE]\n\n";

std::string WithoutUsage() { return absl::StrCat(kFilter, kDelta, kDelta, kFinish, kDone); }
std::string WithUsage() { return absl::StrCat(kFilter, kDelta, kDelta, kFinish, kUsage, kDone); }

// Feeds `stream` in pieces of `piece` bytes (the last call marks the end) and returns what
// would reach the client. As the relay does, a usage scanner tells the stripper which pieces
// hold a whole "usage" key.
std::string Strip(absl::string_view stream, std::size_t piece, int* stripped = nullptr) {
  SseUsageStripper stripper;
  UsageScanner scanner;
  std::string out;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    const absl::string_view part = stream.substr(at, piece);
    const ReadScan scan = scanner.Feed(part);
    const absl::string_view relayed = stripper.Filter(part, at + piece >= stream.size(), scan);
    out.append(relayed.data(), relayed.size());
  }
  if (stream.empty()) {
    const absl::string_view relayed = stripper.Filter("", true);
    out.append(relayed.data(), relayed.size());
  }
  if (stripped != nullptr) {
    *stripped = stripper.stripped_events();
  }
  return out;
}

TEST(SseUsageStripper, RemovesOnlyTheUsageOnlyEvent) {
  int stripped = 0;
  EXPECT_EQ(Strip(WithUsage(), 1 << 20, &stripped), WithoutUsage());
  EXPECT_EQ(stripped, 1);
}

TEST(SseUsageStripper, AnyReadBoundaryGivesTheSameBytes) {
  // Boundaries inside "data:", inside the JSON, between the two newlines of a separator...
  const std::string stream = WithUsage();
  for (std::size_t piece = 1; piece <= 64; ++piece) {
    EXPECT_EQ(Strip(stream, piece), WithoutUsage()) << "pieces of " << piece;
  }
}

TEST(SseUsageStripper, CrlfAndCrLineEndings) {
  for (const char* eol : {"\r\n", "\r"}) {
    const std::string stream = absl::StrReplaceAll(WithUsage(), {{"\n", eol}});
    const std::string want = absl::StrReplaceAll(WithoutUsage(), {{"\n", eol}});
    for (std::size_t piece : {1, 2, 3, 7, 1000}) {
      int stripped = 0;
      EXPECT_EQ(Strip(stream, piece, &stripped), want) << "piece " << piece;
      EXPECT_EQ(stripped, 1);
    }
  }
}

TEST(SseUsageStripper, HoldsBackAtMostTheCurrentEvent) {
  SseUsageStripper stripper;
  const std::string delta = kDelta;
  // Half an event: nothing goes out yet.
  EXPECT_EQ(stripper.Filter(absl::string_view(delta).substr(0, 20), false), "");
  // The rest of it plus half the next: exactly the first event goes out.
  const std::string rest = absl::StrCat(delta.substr(20), delta.substr(0, 10));
  EXPECT_EQ(stripper.Filter(rest, false), delta);
  // A whole event in one read passes at once.
  EXPECT_EQ(stripper.Filter(absl::StrCat(delta.substr(10), kFinish), false),
            absl::StrCat(delta, kFinish));
}

// A backend that never ends an event must not grow the held-back buffer without bound: past
// the cap what came goes out as it came, and the rest of that event follows unheld; the next
// event is read normally again (issue 15, item 7).
TEST(SseUsageStripper, AnEndlessEventIsForwardedInsteadOfHeld) {
  SseUsageStripper stripper;
  const std::string piece(4096, 'x');
  std::string out;
  std::size_t fed = 0;
  bool passed_before_cap = false;
  for (int i = 0; i < 64; ++i) {  // 256 KiB of one event's data line
    const std::string part = i == 0 ? absl::StrCat("data: ", piece) : piece;
    const absl::string_view relayed = stripper.Filter(part, false);
    out.append(relayed.data(), relayed.size());
    fed += part.size();
    passed_before_cap |= fed <= 64 * 1024 && !relayed.empty();
  }
  EXPECT_FALSE(passed_before_cap) << "held back while under the cap";
  EXPECT_GE(out.size(), fed - 64 * 1024) << "held back past the cap";
  // The event ends; the usage-only event after it is still recognised and removed.
  const std::string tail = absl::StrCat("\n\n", kUsage, kDone);
  const absl::string_view relayed = stripper.Filter(tail, true);
  out.append(relayed.data(), relayed.size());
  EXPECT_EQ(out, absl::StrCat("data: ", std::string(64 * 4096, 'x'), "\n\n", kDone));
  EXPECT_EQ(stripper.stripped_events(), 1);
}

TEST(SseUsageStripper, UnchangedEventsAreForwardedWithoutCopying) {
  SseUsageStripper stripper;
  const std::string reads = absl::StrCat(kFilter, kDelta);
  const absl::string_view out = stripper.Filter(reads, false);
  EXPECT_EQ(out, reads);
  EXPECT_EQ(out.data(), reads.data());  // a view of the read itself
}

TEST(SseUsageStripper, UnfinishedEventAtTheEndIsForwardedAsItCame) {
  const std::string cut = absl::StrCat(kFilter, "data: {\"choices\":[{\"delta\"");
  EXPECT_EQ(Strip(cut, 5), cut);
}

TEST(SseUsageStripper, KeepsEventsThatMerelyMentionUsage) {
  // Content that says "usage", an event with choices and a usage object (not usage-only),
  // and a multi-line data event are all left alone.
  const std::string with_choices =
      "data: {\"choices\":[{\"index\":0}],\"usage\":{\"total_tokens\":1}}\n\n";
  const std::string escaped = "data: {\"choices\":[],\"note\":\"\\\"usage\\\":{}\"}\n\n";
  const std::string multi_line = "data: {\"choices\":[],\ndata: \"usage\":{}}\n\n";
  const std::string stream = absl::StrCat(kDelta, with_choices, escaped, multi_line, kDone);
  int stripped = 0;
  EXPECT_EQ(Strip(stream, 3, &stripped), stream);
  EXPECT_EQ(stripped, 0);
}

TEST(SseUsageStripper, RemovesNullUsageMembers) {
  // OpenAI-style chunks carry "usage":null once include_usage is on.
  const std::string last = "data: {\"choices\":[{\"index\":0}],\"id\":\"c1\",\"usage\":null}\n\n";
  const std::string first = "data: {\"usage\": null , \"choices\":[{\"index\":0}]}\n\n";
  const std::string only = "data: {\"usage\":null}\n\n";
  EXPECT_EQ(Strip(absl::StrCat(last, first, only, kUsage, kDone), 4),
            absl::StrCat("data: {\"choices\":[{\"index\":0}],\"id\":\"c1\"}\n\n",
                         "data: {\"choices\":[{\"index\":0}]}\n\n", "data: {}\n\n", kDone));
}

// Escapes decide where strings end: a string ending in an escaped backslash, and one holding
// an escaped quote and "usage" text, around a real null member.
TEST(SseUsageStripper, StringsEndWhereTheirEscapesSay) {
  const std::string event =
      absl::StrCat(R"(data: {"x":"a\\","usage":null,"y":"\"usage\":null"})", "\n\n");
  const std::string want = absl::StrCat(R"(data: {"x":"a\\","y":"\"usage\":null"})", "\n\n");
  for (std::size_t piece : {1, 5, 1000}) {
    EXPECT_EQ(Strip(absl::StrCat(event, kDone), piece), absl::StrCat(want, kDone)) << piece;
  }
}

TEST(SseUsageStripper, EventAndCommentLinesAreKept) {
  const std::string stream =
      absl::StrCat(": keep-alive\n\n", "event: message\nid: 4\n", kUsage + 0, kDone);
  // The usage event here has extra fields (event:, id:) but one data line: still usage-only.
  EXPECT_EQ(Strip(stream, 2), absl::StrCat(": keep-alive\n\n", kDone));
}

// Events as a backend sends them, each with what the client must get of it: kept, cut or
// dropped, with LF, CRLF and CR endings, blank lines in a row, comments and multi-line data.
struct ExpectedEvent {
  std::string sent;
  std::string relayed;
};

std::vector<ExpectedEvent> MixedEvents() {
  const std::string delta = kDelta;
  std::vector<ExpectedEvent> events = {
      {kFilter, kFilter},
      {delta, delta},
      {"data: {\"choices\":[{\"index\":0}],\"usage\":null}\n\n",
       "data: {\"choices\":[{\"index\":0}]}\n\n"},
      {"\n", "\n"},  // an empty event
      {": keep-alive\n\n", ": keep-alive\n\n"},
      {"data: {\"usage\":null,\"choices\":[]}\r\n\r\n", "data: {\"choices\":[]}\r\n\r\n"},
      {delta, delta},
      {"data: {\"choices\":[],\ndata: \"usage\":{}}\n\n",
       "data: {\"choices\":[],\ndata: \"usage\":{}}\n\n"},
      {absl::StrReplaceAll(delta, {{"\n", "\r"}}), absl::StrReplaceAll(delta, {{"\n", "\r"}})},
      {delta, delta},
      {kFinish, kFinish},
      {kUsage, ""},
      {kDone, kDone}};
  return events;
}

// Every split of the stream into two reads, and into three reads at scattered points, gives
// the bytes the events call for: reads with LF endings alone take the stripper's fast path,
// reads with a CR the line-by-line one, and an event can start in one and end in the other.
TEST(SseUsageStripper, AnySplitOfMixedEndingsGivesTheExpectedBytes) {
  std::string stream;
  std::string want;
  for (const ExpectedEvent& event : MixedEvents()) {
    stream += event.sent;
    want += event.relayed;
  }
  auto strip_at = [&](std::vector<std::size_t> cuts) {
    SseUsageStripper stripper;
    std::string out;
    std::size_t from = 0;
    cuts.push_back(stream.size());
    for (std::size_t i = 0; i < cuts.size(); ++i) {
      const absl::string_view relayed = stripper.Filter(
          absl::string_view(stream).substr(from, cuts[i] - from), i + 1 == cuts.size());
      out.append(relayed.data(), relayed.size());
      from = cuts[i];
    }
    EXPECT_EQ(stripper.stripped_events(), 1);
    return out;
  };
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    ASSERT_EQ(strip_at({cut}), want) << "cut at " << cut;
  }
  for (std::size_t a = 0; a <= stream.size(); a += 7) {
    for (std::size_t b = a; b <= stream.size(); b += 13) {
      ASSERT_EQ(strip_at({a, b}), want) << "cuts at " << a << " and " << b;
    }
  }
}

// A read of many events, none of them mentioning usage, goes out whole, uncopied, even after
// an event held back from the read before.
TEST(SseUsageStripper, AReadOfManyEventsIsOneViewOfIt) {
  SseUsageStripper stripper;
  std::string reads;
  for (int i = 0; i < 20; ++i) {
    reads += kDelta;
  }
  const std::string cut = reads + std::string(kDelta).substr(0, 30);
  const absl::string_view out = stripper.Filter(cut, false);
  EXPECT_EQ(out, reads);
  EXPECT_EQ(out.data(), cut.data());
  const std::string next = absl::StrCat(std::string(kDelta).substr(30), kUsage, kDone);
  const absl::string_view tail = stripper.Filter(next, true);
  EXPECT_EQ(tail, absl::StrCat(kDelta, kDone));
}

TEST(StreamUsage, InjectsOnlyForStreamingChatWithoutIncludeUsage) {
  RequestFacts stream;
  stream.stream = true;
  const char* chat = "/openai/deployments/r/chat/completions?api-version=2024-10-21";
  EXPECT_TRUE(ShouldAddStreamUsage(stream, chat));
  EXPECT_TRUE(ShouldAddStreamUsage(stream, "/openai/v1/chat/completions"));
  EXPECT_TRUE(ShouldAddStreamUsage(stream, "/openai/v1/chat/completions?api-version=preview"));
  EXPECT_TRUE(ShouldAddStreamUsage(
      stream, "/openai/deployments/r/chat/completions?x=1&api-version=2025-01-01-preview"));
  // Azure answers 400 to stream_options before 2024-09-01.
  EXPECT_FALSE(ShouldAddStreamUsage(
      stream, "/openai/deployments/r/chat/completions?api-version=2024-06-01"));
  EXPECT_FALSE(ShouldAddStreamUsage(
      stream, "/openai/deployments/r/chat/completions?api-version=2024-05-01-preview"));
  EXPECT_FALSE(
      ShouldAddStreamUsage(stream, "/openai/deployments/r/completions?api-version=2024-10-21"));
  EXPECT_FALSE(
      ShouldAddStreamUsage(stream, "/openai/deployments/r/embeddings?api-version=2024-10-21"));
  RequestFacts asked = stream;
  asked.include_usage = true;
  EXPECT_FALSE(ShouldAddStreamUsage(asked, chat));
  EXPECT_FALSE(ShouldAddStreamUsage(RequestFacts{}, chat));
}

TEST(StreamUsage, AppendsTheMemberKeepingTheClientsBytes) {
  EXPECT_EQ(AddStreamUsage("{\"stream\": true, \"temperature\": 0.70}\n"),
            "{\"stream\": true, \"temperature\": 0.70,\"stream_options\":{\"include_usage\":true}}"
            "\n");
  EXPECT_EQ(AddStreamUsage("[1]"), "");
}

TEST(StreamUsage, EditsAnExistingStreamOptions) {
  const std::string edited =
      AddStreamUsage(R"({"stream":true,"stream_options":{"include_usage":false,"other":1},"n":2})");
  const boost::json::value v = boost::json::parse(edited);
  EXPECT_EQ(v.at("stream_options").at("include_usage").as_bool(), true);
  EXPECT_EQ(v.at("stream_options").at("other").as_int64(), 1);
  EXPECT_EQ(v.at("n").as_int64(), 2);
  const std::string from_null = AddStreamUsage(R"({"stream":true,"stream_options":null})");
  EXPECT_EQ(boost::json::parse(from_null).at("stream_options").at("include_usage").as_bool(), true);
}

}  // namespace
}  // namespace spillway
