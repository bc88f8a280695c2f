// The fault grammars (JSON body and --fault) and how active faults are matched and used up.
#include "tests/mock_aoai/faults.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

TEST(ParseFaultJsonTest, ModeDefaultsToStatus) {
  absl::StatusOr<FaultSpec> fault = ParseFaultJson(R"({"status":503,"count":5})");
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_EQ(fault->mode, FaultMode::kStatus);
  EXPECT_EQ(fault->status, 503);
  EXPECT_EQ(fault->count, 5);
  EXPECT_EQ(fault->duration, absl::InfiniteDuration());
}

TEST(ParseFaultJsonTest, ReadsEveryKey) {
  absl::StatusOr<FaultSpec> fault = ParseFaultJson(
      R"({"mode":"cut","count":2,"duration_ms":500,"deployment":"d1","retry_after_ms":1500,
          "drip_ms":30,"cut_after_chunks":4,"code":"c","message":"m"})");
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_EQ(fault->mode, FaultMode::kCut);
  EXPECT_EQ(fault->duration, absl::Milliseconds(500));
  EXPECT_EQ(fault->deployment, "d1");
  EXPECT_EQ(fault->retry_after_ms, 1500);
  EXPECT_EQ(fault->drip_ms, 30);
  EXPECT_EQ(fault->cut_after_chunks, 4);
  EXPECT_EQ(fault->code, "c");
  EXPECT_EQ(fault->message, "m");
}

TEST(ParseFaultJsonTest, RejectsBadFaults) {
  EXPECT_THAT(ParseFaultJson(R"({"mode":"explode"})").status().message(), HasSubstr("explode"));
  EXPECT_THAT(ParseFaultJson(R"({"mode":"status"})").status().message(), HasSubstr("status"));
  EXPECT_THAT(ParseFaultJson(R"({"status":503,"colour":1})").status().message(),
              HasSubstr("colour"));
  EXPECT_FALSE(ParseFaultJson(R"({"status":999})").ok());
  EXPECT_FALSE(ParseFaultJson(R"({"status":503,"count":0})").ok());
  EXPECT_FALSE(ParseFaultJson(R"({"status":"503x"})").ok());
  EXPECT_FALSE(ParseFaultJson("{}").ok());
  EXPECT_FALSE(ParseFaultJson("[").ok());
}

TEST(ParseFaultJsonTest, GoawayAndCloseModes) {
  for (const auto& [text, mode] :
       {std::pair{"goaway", FaultMode::kGoaway}, std::pair{"close", FaultMode::kClose}}) {
    absl::StatusOr<FaultSpec> fault = ParseFaultJson(absl::StrCat(R"({"mode":")", text, R"("})"));
    ASSERT_TRUE(fault.ok()) << fault.status();
    EXPECT_EQ(fault->mode, mode);
    EXPECT_EQ(FaultToJson(*fault), absl::StrCat(R"({"mode":")", text, R"("})"));
  }
  auto flag = ParseFaultFlag("mode=goaway,count=1");
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ((*flag)[0].mode, FaultMode::kGoaway);
}

TEST(ParseFaultFlagTest, PairsAndSeveralFaults) {
  auto faults = ParseFaultFlag("status=503,count=5; mode=hang,deployment=d2");
  ASSERT_TRUE(faults.ok()) << faults.status();
  ASSERT_EQ(faults->size(), 2u);
  EXPECT_EQ((*faults)[0].status, 503);
  EXPECT_EQ((*faults)[0].count, 5);
  EXPECT_EQ((*faults)[1].mode, FaultMode::kHang);
  EXPECT_EQ((*faults)[1].deployment, "d2");
  EXPECT_TRUE(ParseFaultFlag("")->empty());
  EXPECT_FALSE(ParseFaultFlag("status").ok());
  EXPECT_FALSE(ParseFaultFlag("mode=nope").ok());
}

TEST(FaultToJsonTest, RoundTrips) {
  FaultSpec fault = *ParseFaultJson(R"({"status":429,"count":2,"retry_after_ms":700})");
  absl::StatusOr<FaultSpec> again = ParseFaultJson(FaultToJson(fault));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, 429);
  EXPECT_EQ(again->count, 2);
  EXPECT_EQ(again->retry_after_ms, 700);
}

class FaultTableTest : public ::testing::Test {
 protected:
  absl::Time now_ = absl::FromUnixSeconds(1000);
  FaultTable table_{[this] { return now_; }};
};

TEST_F(FaultTableTest, CountUsesUpTheFault) {
  table_.Add(*ParseFaultJson(R"({"status":503,"count":2})"));
  EXPECT_TRUE(table_.Take("d").has_value());
  EXPECT_TRUE(table_.Take("d").has_value());
  EXPECT_FALSE(table_.Take("d").has_value());
}

TEST_F(FaultTableTest, DurationExpires) {
  table_.Add(*ParseFaultJson(R"({"status":500,"duration_ms":300})"));
  EXPECT_TRUE(table_.Take("d").has_value());
  now_ += absl::Milliseconds(299);
  EXPECT_TRUE(table_.Take("d").has_value());
  now_ += absl::Milliseconds(1);
  EXPECT_FALSE(table_.Take("d").has_value());
}

TEST_F(FaultTableTest, DeploymentFilterAndOldestFirst) {
  table_.Add(*ParseFaultJson(R"({"status":503,"deployment":"d2","count":1})"));
  table_.Add(*ParseFaultJson(R"({"status":500,"count":1})"));
  EXPECT_EQ(table_.Take("d1")->status, 500);
  EXPECT_FALSE(table_.Take("d1").has_value());
  EXPECT_EQ(table_.Take("d2")->status, 503);
}

TEST_F(FaultTableTest, ClearAndList) {
  table_.Add(*ParseFaultJson(R"({"mode":"reset","count":3})"));
  EXPECT_THAT(table_.ListJson(), HasSubstr(R"("mode":"reset")"));
  EXPECT_THAT(table_.ListJson(), HasSubstr(R"("remaining":3)"));
  table_.Clear();
  EXPECT_EQ(table_.ListJson(), R"({"faults":[]})");
  EXPECT_FALSE(table_.Take("d").has_value());
}

}  // namespace
}  // namespace spillway::mock
