// The tables an agent accepts (issue 15, item 10): never an older version, never another
// region's.
#include "dataplane/sync/table_admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace spillway {
namespace {

using ::testing::HasSubstr;

v1::RoutingTable Table(const std::string& region, uint64_t version) {
  v1::RoutingTable table;
  table.set_region(region);
  table.set_version(version);
  return table;
}

TEST(TableAdmission, AcceptsItsRegionAtTheSameOrANewerVersion) {
  EXPECT_TRUE(TableAdmission(Table("eastus2", 1), "eastus2", 0).ok());
  EXPECT_TRUE(TableAdmission(Table("eastus2", 7), "eastus2", 7).ok()) << "a reconnect";
  EXPECT_TRUE(TableAdmission(Table("eastus2", 8), "eastus2", 7).ok());
}

TEST(TableAdmission, RefusesAnOlderVersion) {
  absl::Status refused = TableAdmission(Table("eastus2", 5), "eastus2", 6);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("table version 5 is older than version 6 served here"));
}

TEST(TableAdmission, RefusesAnotherRegionsTableWhateverItsVersion) {
  for (uint64_t version : {1u, 6u, 9u}) {
    absl::Status refused = TableAdmission(Table("westus3", version), "eastus2", 6);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << version;
    EXPECT_THAT(std::string(refused.message()),
                HasSubstr("is for region 'westus3', this agent serves 'eastus2'"));
  }
  EXPECT_FALSE(TableAdmission(Table("", 1), "eastus2", 0).ok());
}

}  // namespace
}  // namespace spillway
