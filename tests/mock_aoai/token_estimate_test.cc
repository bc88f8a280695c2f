// The prompt-token estimator: ~4 code points per token, rounded up, at least 1 per piece.
#include "tests/mock_aoai/token_estimate.h"

#include <vector>

#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

TEST(EstimateTextTokensTest, RoundsUpFourCharactersPerToken) {
  EXPECT_EQ(EstimateTextTokens("abcd"), 1);
  EXPECT_EQ(EstimateTextTokens("abcde"), 2);
  EXPECT_EQ(EstimateTextTokens("hello world"), 3);
  EXPECT_EQ(EstimateTextTokens(std::string(4096, 'x')), 1024);
}

TEST(EstimateTextTokensTest, EmptyTextIsStillOneToken) { EXPECT_EQ(EstimateTextTokens(""), 1); }

TEST(EstimateTextTokensTest, CountsCodePointsNotBytes) {
  // Five two-byte characters: 10 bytes would be 3 tokens, 5 code points are 2.
  EXPECT_EQ(EstimateTextTokens("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), 2);
}

TEST(EstimatePromptTokensTest, SumsPiecesEachAtLeastOne) {
  const std::vector<absl::string_view> pieces = {"", "abcdefgh", "You are helpful."};
  EXPECT_EQ(EstimatePromptTokens(pieces), 1 + 2 + 4);
}

TEST(EstimatePromptTokensTest, NoPiecesIsOneToken) { EXPECT_EQ(EstimatePromptTokens({}), 1); }

}  // namespace
}  // namespace spillway::mock
