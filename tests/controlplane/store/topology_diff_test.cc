// The entry view of a topology and its diff: qualified names, deterministic order, what
// counts as a change, and the edits the store builds on (merge, remove, parse).
#include "controlplane/store/topology_diff.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/topology_yaml.h"
#include "tests/support/reference_topology.h"

namespace spillway {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

using test::ReferenceTopology;

// "<CHANGE> <kind> <name>" so expectations read like the diff itself.
std::vector<std::string> Describe(const std::vector<v1::DiffEntry>& diff) {
  std::vector<std::string> lines;
  for (const v1::DiffEntry& entry : diff) {
    lines.push_back(v1::DiffEntry::Change_Name(entry.change()) + " " +
                    std::string(KindName(entry.kind())) + " " + entry.name());
  }
  return lines;
}

std::vector<std::string> Names(const v1::Topology& topology, v1::Kind kind) {
  std::vector<std::string> names;
  for (const TopologyEntry& entry : TopologyEntries(topology)) {
    if (entry.kind == kind) {
      names.push_back(entry.name);
    }
  }
  return names;
}

TEST(TopologyEntries, QualifiesDeploymentsAndRoutesAndKeepsOrder) {
  const std::vector<TopologyEntry> entries = TopologyEntries(ReferenceTopology());
  ASSERT_EQ(entries.size(), 2u + 4 + 2 + 6 + 8 + 6 + 4 + 3);
  EXPECT_EQ(entries.front().kind, v1::KIND_STAMP);
  EXPECT_EQ(entries.back().kind, v1::KIND_TENANT);
  for (std::size_t i = 1; i < entries.size(); ++i) {
    EXPECT_LE(entries[i - 1].kind, entries[i].kind);
  }
  EXPECT_THAT(
      Names(ReferenceTopology(), v1::KIND_ROUTE),
      ElementsAre("us/gpt-4o", "us/gpt-4o-canary", "us/text-embedding-3-large", "eu/gpt-4o"));
  EXPECT_EQ(Names(ReferenceTopology(), v1::KIND_DEPLOYMENT).front(), "aoai-eus2-ptu/gpt-4o-ptu");
  EXPECT_EQ(Names(ReferenceTopology(), v1::KIND_POOL).front(), "us-workload-ptu");
  EXPECT_EQ(entries.front().message, &ReferenceTopology().stamps(0));
}

TEST(TopologyEntries, KindNames) {
  EXPECT_EQ(KindName(v1::KIND_STAMP), "stamp");
  EXPECT_EQ(KindName(v1::KIND_DEPLOYMENT), "deployment");
  EXPECT_EQ(KindName(v1::KIND_TENANT), "tenant");
  EXPECT_EQ(KindName(v1::KIND_UNSPECIFIED), "");
}

TEST(TopologyDiff, IdenticalTopologiesHaveNoDiff) {
  EXPECT_THAT(DiffTopologies(ReferenceTopology(), ReferenceTopology()), IsEmpty());
  EXPECT_THAT(DiffTopologies(v1::Topology(), v1::Topology()), IsEmpty());
}

TEST(TopologyDiff, ReorderingWithinAKindIsNotAChange) {
  v1::Topology reordered = ReferenceTopology();
  reordered.mutable_pools()->SwapElements(0, 3);
  reordered.mutable_routes()->SwapElements(0, 3);
  EXPECT_THAT(DiffTopologies(ReferenceTopology(), reordered), IsEmpty());
}

TEST(TopologyDiff, EverythingAddedFromEmptyAndRemovedToEmpty) {
  const std::vector<v1::DiffEntry> added = DiffTopologies(v1::Topology(), ReferenceTopology());
  ASSERT_EQ(added.size(), TopologyEntries(ReferenceTopology()).size());
  for (const v1::DiffEntry& entry : added) {
    EXPECT_EQ(entry.change(), v1::DiffEntry::CHANGE_ADDED) << entry.name();
  }
  const std::vector<v1::DiffEntry> removed = DiffTopologies(ReferenceTopology(), v1::Topology());
  ASSERT_EQ(removed.size(), added.size());
  EXPECT_EQ(removed[0].change(), v1::DiffEntry::CHANGE_REMOVED);
}

TEST(TopologyDiff, OrderedByKindThenNameWhateverTheEditOrder) {
  v1::Topology changed = ReferenceTopology();
  changed.mutable_tenants()->RemoveLast();                    // eu-helpdesk
  changed.mutable_routes(3)->set_locality(v1::LOCALITY_ANY);  // eu/gpt-4o
  changed.mutable_deployments(7)->set_capacity(451);          // aoai-frc-std/gpt-4o
  changed.mutable_deployments(0)->set_capacity(101);          // aoai-eus2-ptu/gpt-4o-ptu
  changed.add_stamps()->set_name("apac");
  changed.mutable_stamps(0)->set_description("United States");
  EXPECT_THAT(Describe(DiffTopologies(ReferenceTopology(), changed)),
              ElementsAre("CHANGE_ADDED stamp apac", "CHANGE_CHANGED stamp us",
                          "CHANGE_CHANGED deployment aoai-eus2-ptu/gpt-4o-ptu",
                          "CHANGE_CHANGED deployment aoai-frc-std/gpt-4o",
                          "CHANGE_CHANGED route eu/gpt-4o", "CHANGE_REMOVED tenant eu-helpdesk"));
}

TEST(TopologyDiff, SameRouteNameInAnotherStampIsAnotherEntry) {
  v1::Topology changed = ReferenceTopology();
  changed.mutable_routes(0)->set_stamp("eu");  // us/gpt-4o becomes a second eu/gpt-4o
  changed.mutable_routes(3)->set_name("gpt-4o-eu");
  EXPECT_THAT(Describe(DiffTopologies(ReferenceTopology(), changed)),
              ElementsAre("CHANGE_CHANGED route eu/gpt-4o", "CHANGE_ADDED route eu/gpt-4o-eu",
                          "CHANGE_REMOVED route us/gpt-4o"));
}

TEST(TopologyDiff, AnAbsentWeightDiffersFromAnExplicitOne) {
  // The YAML keeps an absent weight absent; replacing it with its default is a change the
  // operator made, so the stored file must follow it.
  v1::Topology changed = ReferenceTopology();
  ASSERT_FALSE(changed.pools(0).members(0).has_weight());
  changed.mutable_pools(0)->mutable_members(0)->set_weight(1);
  EXPECT_THAT(Describe(DiffTopologies(ReferenceTopology(), changed)),
              ElementsAre("CHANGE_CHANGED pool us-workload-ptu"));
}

TEST(TopologyDiff, FormatsOneLinePerEntry) {
  v1::Topology changed = ReferenceTopology();
  changed.mutable_tenants()->RemoveLast();
  changed.add_stamps()->set_name("apac");
  changed.mutable_routes(3)->set_locality(v1::LOCALITY_ANY);
  EXPECT_EQ(FormatDiff(DiffTopologies(ReferenceTopology(), changed)),
            "added stamp apac\nchanged route eu/gpt-4o\nremoved tenant eu-helpdesk\n");
}

TEST(TopologyEdits, MergeReplacesInPlaceAndAppendsNewEntries) {
  v1::Topology entries;
  v1::Deployment* replaced = entries.add_deployments();
  *replaced = ReferenceTopology().deployments(2);  // aoai-eus2-std/gpt-4o
  replaced->set_capacity(999);
  v1::Route* route = entries.add_routes();
  *route = ReferenceTopology().routes(3);  // eu/gpt-4o
  route->set_name("gpt-4o-mini");
  entries.add_stamps()->set_name("apac");

  v1::Topology merged = ReferenceTopology();
  MergeEntries(entries, merged);
  EXPECT_EQ(merged.deployments_size(), ReferenceTopology().deployments_size());
  EXPECT_EQ(merged.deployments(2).capacity(), 999u);
  EXPECT_THAT(Names(merged, v1::KIND_ROUTE),
              ElementsAre("us/gpt-4o", "us/gpt-4o-canary", "us/text-embedding-3-large", "eu/gpt-4o",
                          "eu/gpt-4o-mini"));
  EXPECT_THAT(Names(merged, v1::KIND_STAMP), ElementsAre("us", "eu", "apac"));
}

TEST(TopologyEdits, RemoveByQualifiedNameKeepsTheOthersInOrder) {
  v1::Topology topology = ReferenceTopology();
  EXPECT_TRUE(RemoveEntry(v1::KIND_ROUTE, "us/gpt-4o", topology));
  EXPECT_THAT(Names(topology, v1::KIND_ROUTE),
              ElementsAre("us/gpt-4o-canary", "us/text-embedding-3-large", "eu/gpt-4o"));
  EXPECT_FALSE(RemoveEntry(v1::KIND_ROUTE, "gpt-4o-canary", topology));  // not qualified
  EXPECT_TRUE(RemoveEntry(v1::KIND_DEPLOYMENT, "aoai-eus2-std/embed-3", topology));
  EXPECT_EQ(topology.deployments_size(), ReferenceTopology().deployments_size() - 1);
  EXPECT_FALSE(RemoveEntry(v1::KIND_DEPLOYMENT, "aoai-eus2-std/embed-3", topology));
  EXPECT_TRUE(RemoveEntry(v1::KIND_TENANT, "nightly-summaries", topology));
  EXPECT_FALSE(RemoveEntry(v1::KIND_UNSPECIFIED, "us", topology));
}

TEST(TopologyEdits, EntryBytesRoundTrip) {
  v1::Topology rebuilt;
  for (const TopologyEntry& entry : TopologyEntries(ReferenceTopology())) {
    const std::string bytes = EntryBytes(*entry.message);
    EXPECT_EQ(bytes, EntryBytes(*entry.message)) << entry.name;
    ASSERT_TRUE(AppendEntryBytes(entry.kind, bytes, rebuilt)) << entry.name;
  }
  EXPECT_TRUE(MessageDifferencer::Equals(rebuilt, ReferenceTopology()));
  EXPECT_FALSE(AppendEntryBytes(v1::KIND_UNSPECIFIED, "", rebuilt));
  EXPECT_FALSE(AppendEntryBytes(v1::KIND_STAMP, "\xff\xff\xff", rebuilt));
  EXPECT_EQ(rebuilt.stamps_size(), ReferenceTopology().stamps_size());  // the bad one is not kept
}

}  // namespace
}  // namespace spillway
