// --control-plane with several replicas (issue 20): the list an agent is given, and the order
// in which it tries them.
#include "dataplane/sync/control_plane_targets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ControlPlaneTargets, OneAddressIsAListOfOne) {
  absl::StatusOr<std::vector<std::string>> targets = ParseControlPlaneTargets("127.0.0.1:7070");
  ASSERT_TRUE(targets.ok()) << targets.status();
  EXPECT_THAT(*targets, ElementsAre("127.0.0.1:7070"));
}

TEST(ControlPlaneTargets, SplitsOnCommasAndTrimsSpaces) {
  absl::StatusOr<std::vector<std::string>> targets =
      ParseControlPlaneTargets("cp-a:7070, cp-b:7070 ,dns:///cp.internal:7070");
  ASSERT_TRUE(targets.ok()) << targets.status();
  EXPECT_THAT(*targets, ElementsAre("cp-a:7070", "cp-b:7070", "dns:///cp.internal:7070"));
}

TEST(ControlPlaneTargets, RefusesEmptyEntriesRepeatsAndOverlongLists) {
  for (const char* list : {"", ",", "a:1,,b:1", "a:1, ", " "}) {
    absl::StatusOr<std::vector<std::string>> targets = ParseControlPlaneTargets(list);
    ASSERT_FALSE(targets.ok()) << "'" << list << "'";
    EXPECT_THAT(targets.status().message(), HasSubstr("an empty address")) << list;
  }
  absl::StatusOr<std::vector<std::string>> repeated = ParseControlPlaneTargets("a:1,b:1,a:1");
  ASSERT_FALSE(repeated.ok());
  EXPECT_THAT(repeated.status().message(), HasSubstr("a:1 is given twice"));

  std::string many;
  for (std::size_t i = 0; i <= kMaxControlPlaneTargets; ++i) {
    absl::StrAppend(&many, i == 0 ? "" : ",", "cp-", i, ":7070");
  }
  absl::StatusOr<std::vector<std::string>> overlong = ParseControlPlaneTargets(many);
  ASSERT_FALSE(overlong.ok());
  EXPECT_THAT(overlong.status().message(), HasSubstr("more than 32 addresses"));
  many.resize(many.rfind(','));  // exactly kMaxControlPlaneTargets
  EXPECT_TRUE(ParseControlPlaneTargets(many).ok());
}

TEST(TargetRotation, StartsWhereToldAndTriesEachBeforeAnyAgain) {
  TargetRotation rotation({"a", "b", "c"}, 4);  // 4 % 3: "b"
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) {
    order.push_back(rotation.current());
    rotation.Advance();
  }
  EXPECT_THAT(order, ElementsAre("b", "c", "a", "b", "c", "a"));
}

TEST(TargetRotation, OneReplicaIsAlwaysTheSame) {
  TargetRotation rotation({"only:7070"}, 12345);
  rotation.Advance();
  EXPECT_EQ(rotation.current(), "only:7070");
  EXPECT_EQ(rotation.size(), 1u);
}

}  // namespace
}  // namespace spillway
