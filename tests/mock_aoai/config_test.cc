// Deployment specs and host:port parsing for spillway-mock-aoai's flags.
#include "tests/mock_aoai/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

TEST(ParseDeploymentSpecTest, DefaultsFollowAzure) {
  absl::StatusOr<DeploymentSpec> spec = ParseDeploymentSpec("gpt-4o");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "gpt-4o");
  EXPECT_EQ(spec->model, "gpt-4o");
  EXPECT_EQ(spec->tpm, 1'000'000);
  EXPECT_EQ(spec->rpm, 6'000);  // 6 RPM per 1,000 TPM
  EXPECT_FALSE(spec->rpm_given);
  EXPECT_EQ(spec->ptu, 0);
}

TEST(ParseDeploymentSpecTest, ReadsEveryKey) {
  absl::StatusOr<DeploymentSpec> spec =
      ParseDeploymentSpec("chat:model=gpt-4o-mini:tpm=30000:rpm=7:ptu=3");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model, "gpt-4o-mini");
  EXPECT_EQ(spec->tpm, 30'000);
  EXPECT_EQ(spec->rpm, 7);
  EXPECT_TRUE(spec->rpm_given);
  EXPECT_EQ(spec->ptu, 3);
}

TEST(ParseDeploymentSpecTest, RpmDerivesFromTpm) {
  EXPECT_EQ(ParseDeploymentSpec("a:tpm=30000")->rpm, 180);
  EXPECT_EQ(ParseDeploymentSpec("a:tpm=10")->rpm, 1);  // never zero
}

TEST(ParseDeploymentSpecTest, RejectsBadSpecsNamingThem) {
  EXPECT_THAT(ParseDeploymentSpec("a:tpm=x").status().message(), HasSubstr("tpm"));
  EXPECT_THAT(ParseDeploymentSpec("a:tpm=0").status().message(), HasSubstr("positive"));
  EXPECT_THAT(ParseDeploymentSpec("a:color=red").status().message(), HasSubstr("color"));
  EXPECT_FALSE(ParseDeploymentSpec(":tpm=5").ok());
  EXPECT_FALSE(ParseDeploymentSpec("a/b").ok());
  EXPECT_FALSE(ParseDeploymentSpec("a:model=").ok());
}

TEST(ParseDeploymentListTest, SplitsOnCommas) {
  auto list = ParseDeploymentList("a, b:tpm=5 ,c:ptu=2");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[1].name, "b");
  EXPECT_EQ((*list)[1].tpm, 5);
  EXPECT_EQ((*list)[2].ptu, 2);
}

TEST(ParseDeploymentListTest, RejectsDuplicatesAndEmpty) {
  EXPECT_THAT(ParseDeploymentList("a,a").status().message(), HasSubstr("twice"));
  EXPECT_FALSE(ParseDeploymentList(" , ").ok());
}

TEST(ParseHostPortTest, AcceptsPortZeroAndRejectsGarbage) {
  absl::StatusOr<HostPort> parsed = ParseHostPort("127.0.0.1:0");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_EQ(parsed->port, 0);
  EXPECT_EQ(ParseHostPort("localhost:8080")->port, 8080);
  EXPECT_EQ(ParseHostPort("[::1]:8080")->host, "::1");
  EXPECT_FALSE(ParseHostPort("nope").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPort("h:70000").ok());
  EXPECT_FALSE(ParseHostPort("h:x").ok());
}

}  // namespace
}  // namespace spillway::mock
