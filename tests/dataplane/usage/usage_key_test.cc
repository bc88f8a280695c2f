// FindUsageKey: the same answers as a plain search for "usage" with its quotes, at the edges
// of the text, next to look-alikes, and against std::string's own search over every placement
// in a generated text.
#include "dataplane/usage/usage_key.h"

#include <gtest/gtest.h>

#include <string>

namespace spillway {
namespace {

constexpr std::size_t kNpos = absl::string_view::npos;
const std::string kKey(kUsageKey);  // for std::string's own searches

TEST(UsageKey, FindsTheKeyAtTheEdgesOfTheText) {
  EXPECT_EQ(FindUsageKey(R"("usage")"), 0u);
  EXPECT_EQ(FindUsageKey(R"({"a":1,"usage":null})"), 7u);
}

TEST(UsageKey, LookAlikesAreNotTheKey) {
  for (const char* text : {"", "u", "usage", R"("usage)", R"(usage")", R"("usages")", R"("Usage")",
                           R"("u" "sage")", R"({"prompt_usage":1,"use":"us"})"}) {
    EXPECT_EQ(FindUsageKey(text), kNpos) << text;
  }
}

// Every placement of the key (and of a truncated key) in a text full of quotes and 'u's gives
// the answer std::string::find gives.
TEST(UsageKey, AgreesWithAPlainSearchEverywhere) {
  const std::string filler = R"({"u":"uu","usa":"q","sage":"u"})";
  for (const std::string& piece : {kKey, std::string(R"("usag)")}) {
    for (std::size_t at = 0; at <= filler.size(); ++at) {
      const std::string text = filler.substr(0, at) + piece + filler.substr(at);
      const std::size_t expected = text.find(kKey);
      EXPECT_EQ(FindUsageKey(text), expected) << text;
    }
  }
}

// Texts long enough for the 16-byte blocks: the key at every offset of a few blocks, after
// look-alikes that match the block test ('u' and a 'g' three bytes on) but not the key.
TEST(UsageKey, FindsTheKeyAtEveryOffsetOfLongText) {
  const std::string filler = R"({"x":"uxxg","usag":"u  g","usa_g":1,"q":"usages"})";
  std::string base;
  while (base.size() < 200) {
    base += filler;
  }
  EXPECT_EQ(FindUsageKey(base), kNpos);
  for (std::size_t at = 0; at <= base.size(); ++at) {
    const std::string text = base.substr(0, at) + kKey + base.substr(at);
    ASSERT_EQ(FindUsageKey(text), text.find(kKey)) << "key at " << at;
    const std::string cut = base.substr(0, at) + kKey.substr(0, 6);  // no closing quote
    ASSERT_EQ(FindUsageKey(cut), cut.find(kKey)) << "cut key at " << at;
  }
}

// Every length up to a few blocks, the key at every place: the block scans (16 and 32 bytes,
// and 64 in pairs of 32) and the last block that overlaps the one before it, at their edges.
TEST(UsageKey, EveryLengthAndPlace) {
  for (std::size_t length = 0; length <= 200; ++length) {
    const std::string base(length, 'u');  // a candidate's 'u' everywhere, never its 'g'
    EXPECT_EQ(FindUsageKey(base), kNpos);
    for (std::size_t at = 0; at + kKey.size() <= length; ++at) {
      std::string text = base;
      text.replace(at, kKey.size(), kKey);
      ASSERT_EQ(FindUsageKey(text), at) << "length " << length << ", key at " << at;
    }
  }
}

// As the usage scanner searches a read: on from each key found to the end of the text.
bool ReadNotesCr(absl::string_view text) {
  bool cr = false;
  for (std::size_t at = FindUsageKeyNotingCr(text, &cr); at != kNpos;) {
    const std::size_t next = FindUsageKeyNotingCr(text.substr(at + 1), &cr);
    at = next == kNpos ? next : at + 1 + next;
  }
  return cr;
}

// The CR the stripper relies on being told about: at every place of every length, before and
// after a key (a search that stops at a key need not have seen a later CR, but searching on
// to the end must), and never one that is not there.
TEST(UsageKey, NotesACarriageReturnAtEveryPlace) {
  for (std::size_t length = 0; length <= 200; ++length) {
    const std::string base(length, 'u');
    bool cr = false;
    EXPECT_EQ(FindUsageKeyNotingCr(base, &cr), kNpos);
    EXPECT_FALSE(cr) << "length " << length;
    std::string keyed = base;
    const std::size_t key_at = length / 3;
    if (key_at + kKey.size() <= length) {
      keyed.replace(key_at, kKey.size(), kKey);
      EXPECT_FALSE(ReadNotesCr(keyed)) << "length " << length;
    }
    for (std::size_t at = 0; at < length; ++at) {
      std::string text = base;
      text[at] = '\r';
      cr = false;
      EXPECT_EQ(FindUsageKeyNotingCr(text, &cr), kNpos);
      ASSERT_TRUE(cr) << "length " << length << ", CR at " << at;
      if (keyed != base && (at < key_at || at >= key_at + kKey.size())) {
        text = keyed;
        text[at] = '\r';
        ASSERT_TRUE(ReadNotesCr(text)) << "length " << length << ", CR at " << at;
        cr = false;
        ASSERT_EQ(FindUsageKeyNotingCr(text, &cr), key_at);
      }
    }
  }
}

}  // namespace
}  // namespace spillway
