// Files of numbers: replayed profiles (--profile) and recorded sizes (--prompt-tokens @FILE),
// plain lists or a CSV column, every refusal naming the file, the line and the value; and the
// seeded deck the sizes are dealt from.
#include "tools/load/number_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/temp_files_test.h"
#include "tools/load/rate_shape.h"
#include "tools/load/token_sizes.h"

namespace spillway::load {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class NumberFileTest : public test::TempFilesTest {
 protected:
  // The profile a file gives, or the refusal's message (and a failure) when it is refused.
  std::vector<int64_t> Profile(const std::string& text) {
    RateShape shape;
    const absl::Status read = ReadProfile(Write("profile", text), shape);
    EXPECT_TRUE(read.ok()) << read;
    return shape.profile_rpm;
  }
  std::string ProfileError(const std::string& text) {
    RateShape shape;
    const absl::Status read = ReadProfile(Write("profile", text), shape);
    EXPECT_FALSE(read.ok());
    return std::string(read.message());
  }
};

TEST_F(NumberFileTest, PlainProfileWithCommentsBlankLinesAndCrlf) {
  EXPECT_THAT(Profile("600\n300\n"), ElementsAre(600, 300));
  EXPECT_THAT(Profile("# minute rates\n\n 600 \r\n# quiet\n0\r\n300"), ElementsAre(600, 0, 300));
}

TEST_F(NumberFileTest, CsvProfileByItsRpmRequestsOrSentColumn) {
  EXPECT_THAT(Profile("minute,rpm\n0,60\n1,120\n"), ElementsAre(60, 120));
  EXPECT_THAT(Profile("Requests,minute\n5,0\n7,1\n"), ElementsAre(5, 7));
  // A previous run's `-o csv`: its sent column, past quoted commas in other columns' names.
  EXPECT_THAT(Profile("minute,seconds,sent,ok,\"backend:b,chat\"\n0,60,30,29,1\n1,12.5,6,6,0\n"),
              ElementsAre(30, 6));
  // rpm is preferred to sent when both are there.
  EXPECT_THAT(Profile("sent,rpm\n1,2\n"), ElementsAre(2));
}

TEST_F(NumberFileTest, BadProfilesNameTheFileLineAndValue) {
  const std::string path = dir_->path() + "/profile";
  EXPECT_EQ(ProfileError("60\n# fine\nsixty\n"),
            path + ":3: 'sixty' must be a whole number from 0 to 6000000");
  EXPECT_EQ(ProfileError("60\n-1\n"), path + ":2: '-1' must be a whole number from 0 to 6000000");
  EXPECT_EQ(ProfileError("60\n6000001\n"),
            path + ":2: '6000001' must be a whole number from 0 to 6000000");
  EXPECT_EQ(ProfileError("minute,sent\n0,12.5\n"),
            path + ":2: '12.5' must be a whole number from 0 to 6000000");
  EXPECT_EQ(ProfileError("minute,sent\n0\n"), path + ":2: has no sent value");
  EXPECT_EQ(ProfileError("minute,ok\n0,1\n"),
            path +
                ":1: 'minute,ok' is neither a whole number nor a CSV header with a column "
                "named rpm, requests or sent");
  EXPECT_EQ(ProfileError(""), path + ": holds no value");
  EXPECT_EQ(ProfileError("# nothing\n\n"), path + ": holds no value");
  RateShape shape;
  EXPECT_EQ(ReadProfile(dir_->path() + "/missing", shape).message(),
            dir_->path() + "/missing: cannot read the file");
}

TEST_F(NumberFileTest, ProfilesAreAtMostADay) {
  std::string day;
  for (int i = 0; i < 1440; ++i) absl::StrAppend(&day, i % 7, "\n");
  EXPECT_EQ(Profile(day).size(), 1440u);
  EXPECT_EQ(ProfileError("# header comment\n" + day + "5\n"),
            dir_->path() + "/profile:1442: more than 1440 minutes");
}

TEST_F(NumberFileTest, OverlongLinesAreRefused) {
  EXPECT_THAT(ProfileError("1\n" + std::string(kMaxNumberLine + 10, '7') + "\n"),
              HasSubstr("/profile:2: a line longer than 65536 bytes"));
}

TEST(CsvLineTest, QuotesProtectCommasAndQuotes) {
  EXPECT_THAT(SplitCsvLine("a,\"b,c\",\"d\"\"e\",,f"), ElementsAre("a", "b,c", "d\"e", "", "f"));
  EXPECT_THAT(SplitCsvLine(""), ElementsAre(""));
}

TEST_F(NumberFileTest, SizesFromAPlainListOrTheirCsvColumn) {
  absl::StatusOr<TokenRange> plain = ParseTokenSizes(
      "@" + Write("sizes.txt", "# prompt sizes\n100\n300\n200\n"), 1000, "prompt_tokens");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_THAT(*plain->samples, ElementsAre(100, 300, 200));
  EXPECT_EQ(plain->min, 100);
  EXPECT_EQ(plain->max, 300);
  EXPECT_EQ(plain->mean(), 200);
  EXPECT_FALSE(plain->fixed());
  EXPECT_EQ(TokenRangeText(*plain), "@" + dir_->path() + "/sizes.txt");
  // Usage exported per request: the column the flag names.
  const std::string usage =
      Write("usage.csv", "time,prompt_tokens,completion_tokens\nt1,10,5\nt2,30,15\nt3,20,40\n");
  absl::StatusOr<TokenRange> completion = ParseTokenSizes("@" + usage, 1000, "completion_tokens");
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_THAT(*completion->samples, ElementsAre(5, 15, 40));
  EXPECT_EQ(completion->mean(), 20);
  // N and MIN-MAX still parse as before.
  EXPECT_TRUE(ParseTokenSizes("200", 1000, "prompt_tokens")->fixed());
  EXPECT_EQ(ParseTokenSizes("100-300", 1000, "prompt_tokens")->mean(), 200);
}

TEST_F(NumberFileTest, BadSizeFilesNameTheFileAndLine) {
  auto error = [&](const std::string& text, const char* column = "prompt_tokens") {
    absl::StatusOr<TokenRange> sizes = ParseTokenSizes("@" + Write("s", text), 1000, column);
    EXPECT_FALSE(sizes.ok());
    return std::string(sizes.status().message());
  };
  const std::string path = dir_->path() + "/s";
  EXPECT_EQ(error(""), path + ": holds no value");
  EXPECT_EQ(error("10\n0\n"), path + ":2: '0' must be a whole number from 1 to 1000");
  EXPECT_EQ(error("10\n1001\n"), path + ":2: '1001' must be a whole number from 1 to 1000");
  EXPECT_EQ(error("prompt_tokens\n10\nten\n"),
            path + ":3: 'ten' must be a whole number from 1 to 1000");
  EXPECT_EQ(error("completion_tokens\n10\n"),
            path +
                ":1: 'completion_tokens' is neither a whole number nor a CSV header with a "
                "column named prompt_tokens");
  EXPECT_EQ(ParseTokenSizes("@" + dir_->path() + "/none", 1000, "prompt_tokens").status().message(),
            dir_->path() + "/none: cannot read the file");
}

TEST(SizeDrawTest, FileSizesAreDealtAsAShuffledDeck) {
  TokenRange range;
  range.samples = std::make_shared<std::vector<int32_t>>(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7});
  SizeDraw a(range);
  SizeDraw b(range);
  std::mt19937_64 random_a(1);
  std::mt19937_64 random_b(1);
  std::vector<int64_t> first_pass;
  for (int pass = 0; pass < 50; ++pass) {
    std::map<int64_t, int> seen;
    std::vector<int64_t> order;
    for (int i = 0; i < 7; ++i) {
      const int64_t size = a.Next(random_a);
      EXPECT_EQ(size, b.Next(random_b)) << "a fixed seed deals the same sizes";
      ++seen[size];
      order.push_back(size);
    }
    EXPECT_EQ(seen.size(), 7u) << "each size once a pass";
    if (pass == 0) first_pass = order;
    if (pass == 1) {
      EXPECT_NE(order, first_pass) << "a new order each pass";
    }
  }
  // Each draw is uniform: over many passes, each size is the first of a pass about as often.
  std::map<int64_t, int> first;
  std::mt19937_64 random(7);
  SizeDraw c(range);
  for (int pass = 0; pass < 7000; ++pass) {
    ++first[c.Next(random)];
    for (int i = 1; i < 7; ++i) c.Next(random);
  }
  for (const auto& [size, count] : first) {
    EXPECT_NEAR(count, 1000, 150) << size;
  }
}

}  // namespace
}  // namespace spillway::load
