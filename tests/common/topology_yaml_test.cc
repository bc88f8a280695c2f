// The reference topology loads into the proto with nothing lost, and malformed copies are
// refused with file:line:column errors that name the field.
#include "common/topology_yaml.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/file_io.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;

std::string ReferenceTopologyText() {
  absl::StatusOr<std::string> text = ReadFile(SPILLWAY_REFERENCE_TOPOLOGY);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.value_or("");
}

// Two YAML trees hold the same information: maps compare by key regardless of order or
// flow/block style, scalars by their text.
bool SameTree(const YAML::Node& a, const YAML::Node& b, const std::string& path, std::string* why) {
  if (a.Type() != b.Type()) {
    *why = path + ": node kinds differ";
    return false;
  }
  switch (a.Type()) {
    case YAML::NodeType::Scalar:
      if (a.Scalar() != b.Scalar()) {
        *why = path + ": '" + a.Scalar() + "' != '" + b.Scalar() + "'";
        return false;
      }
      return true;
    case YAML::NodeType::Sequence:
      if (a.size() != b.size()) {
        *why = path + ": list sizes differ";
        return false;
      }
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!SameTree(a[i], b[i], path + "[" + std::to_string(i) + "]", why)) {
          return false;
        }
      }
      return true;
    case YAML::NodeType::Map:
      if (a.size() != b.size()) {
        *why = path + ": key counts differ";
        return false;
      }
      for (const auto& entry : a) {
        const std::string key = entry.first.Scalar();
        if (!b[key]) {
          *why = path + "." + key + ": missing";
          return false;
        }
        if (!SameTree(entry.second, b[key], path + "." + key, why)) {
          return false;
        }
      }
      return true;
    default:
      return true;
  }
}

TEST(TopologyYaml, ReferenceTopologyLoads) {
  absl::StatusOr<v1::Topology> topology =
      ParseTopologyYaml(ReferenceTopologyText(), "topology.yaml");
  ASSERT_TRUE(topology.ok()) << topology.status();
  EXPECT_EQ(topology->stamps_size(), 2);
  EXPECT_EQ(topology->regions_size(), 4);
  EXPECT_EQ(topology->subscriptions_size(), 2);
  EXPECT_EQ(topology->instances_size(), 6);
  EXPECT_EQ(topology->deployments_size(), 8);
  EXPECT_EQ(topology->pools_size(), 6);
  EXPECT_EQ(topology->routes_size(), 4);
  EXPECT_EQ(topology->tenants_size(), 3);

  const v1::Instance& ptu = topology->instances(0);
  EXPECT_EQ(ptu.name(), "aoai-eus2-ptu");
  EXPECT_EQ(ptu.auth().method_case(), v1::InstanceAuth::kManagedIdentity);
  EXPECT_TRUE(ptu.auth().managed_identity());
  EXPECT_EQ(topology->instances(2).auth().api_key_env(), "AOAI_EUS2_STD_KEY");
  EXPECT_EQ(topology->instances(3).auth().api_key_file(), "/etc/spillway/keys/aoai-wus3-std");

  const v1::Deployment& pool_ptu = topology->deployments(1);
  EXPECT_EQ(pool_ptu.sku(), v1::SKU_DATA_ZONE_PROVISIONED_MANAGED);
  EXPECT_EQ(pool_ptu.capacity(), 300u);
  EXPECT_EQ(pool_ptu.version(), "2024-08-06");

  const v1::Pool& eu = topology->pools(5);
  ASSERT_EQ(eu.members_size(), 2);
  EXPECT_EQ(eu.members(0).deployment(), "aoai-swc-std/gpt-4o");
  EXPECT_EQ(eu.members(0).weight(), 2u);
  EXPECT_FALSE(topology->pools(0).members(0).has_weight());

  const v1::Route& primary = topology->routes(0);
  EXPECT_EQ(primary.locality(), v1::LOCALITY_PREFER_LOCAL);
  EXPECT_THAT(primary.tiers(),
              ::testing::ElementsAre("us-workload-ptu", "us-enterprise-ptu", "us-standard"));
  const v1::Route& canary = topology->routes(1);
  ASSERT_EQ(canary.split_size(), 2);
  EXPECT_EQ(canary.split(1).percent(), 10u);
  EXPECT_EQ(canary.split(1).tiers(0), "us-standard-next");
  EXPECT_EQ(topology->routes(3).stamp(), "eu");

  const v1::Tenant& checkout = topology->tenants(0);
  EXPECT_EQ(checkout.priority(), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(checkout.limits().tokens_per_minute(), 120000u);
  EXPECT_EQ(checkout.limits().requests_per_minute(), 720u);
  EXPECT_EQ(checkout.api_keys(0).sha256(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  EXPECT_EQ(topology->tenants(1).priority(), v1::PRIORITY_BATCH);
}

// No loss: the proto written back as YAML is the same tree as the operator's file, and
// parsing that again gives the same proto.
TEST(TopologyYaml, ReferenceTopologyRoundTripsWithoutLoss) {
  const std::string original = ReferenceTopologyText();
  absl::StatusOr<v1::Topology> topology = ParseTopologyYaml(original, "topology.yaml");
  ASSERT_TRUE(topology.ok()) << topology.status();

  const std::string emitted = TopologyToYaml(*topology);
  std::string why;
  EXPECT_TRUE(SameTree(YAML::Load(original), YAML::Load(emitted), "", &why))
      << why << "\n--- emitted ---\n"
      << emitted;

  absl::StatusOr<v1::Topology> again = ParseTopologyYaml(emitted, "emitted.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*topology, *again));
}

// Replaces the first occurrence of `from` and fails loudly if the reference file changed.
std::string ReplaceOnce(const std::string& text, const std::string& from, const std::string& to) {
  std::string result = text;
  std::size_t at = result.find(from);
  EXPECT_NE(at, std::string::npos) << "reference topology no longer contains: " << from;
  if (at != std::string::npos) {
    result.replace(at, from.size(), to);
  }
  return result;
}

int LineOf(const std::string& text, const std::string& needle) {
  std::size_t at = text.find(needle);
  return at == std::string::npos
             ? -1
             : 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

TEST(TopologyYaml, MalformedCopiesGiveLineNumberedErrors) {
  const std::string original = ReferenceTopologyText();
  struct Case {
    std::string from, to, problem;
  };
  const Case cases[] = {
      {"sku: ProvisionedManaged,", "sku: Provisioned,",
       "deployments[0].sku: unknown value 'Provisioned' (expected one of Standard"},
      {"capacity: 100 }", "capacity: lots }", "deployments[0].capacity: expected a non-negative"},
      {"capacity: 100 }", "capacity: -5 }", "deployments[0].capacity: expected a non-negative"},
      {"locality: prefer-local", "locality: nearby",
       "routes[0].locality: unknown value 'nearby' (expected one of prefer-local, local-only, "
       "any)"},
      {"priority: batch", "priority: whenever", "tenants[1].priority: unknown value 'whenever'"},
      {"    region: westus3\n    subscription: ai-platform-prod-1",
       "    regoin: westus3\n    subscription: ai-platform-prod-1",
       "instances[1].regoin: unknown field 'regoin' in Instance"},
      {"tiers: [ us-embeddings ]", "tiers: us-embeddings", "routes[2].tiers: expected a list"},
      {"limits: { tokens_per_minute: 60000 }", "limits: [ 60000 ]",
       "tenants[2].limits: expected a mapping of TenantLimits fields"},
      {"auth: { managed_identity: true }            # Entra",
       "auth: { managed_identity: true, api_key_env: X }  # Entra",
       "instances[0].auth.api_key_env: only one of managed_identity, api_key_env"},
      {"auth: { managed_identity: true }            # Entra",
       "auth: { managed_identity: maybe }  # Entra",
       "instances[0].auth.managed_identity: expected true or false"},
      {"  - { name: eastus2,       stamp: us }",
       "  - { name: eastus2,       stamp: us, stamp: eu }", "regions[0].stamp: duplicate key"},
  };
  for (const Case& c : cases) {
    const std::string broken = ReplaceOnce(original, c.from, c.to);
    const int line = LineOf(broken, c.to);
    absl::StatusOr<v1::Topology> result = ParseTopologyYaml(broken, "topology.yaml");
    ASSERT_FALSE(result.ok()) << "accepted: " << c.to;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(result.status().message());
    EXPECT_THAT(message, HasSubstr(c.problem)) << c.to;
    // The error points at the line that was broken.
    EXPECT_THAT(message, ::testing::StartsWith("topology.yaml:" + std::to_string(line) + ":"))
        << c.to << " -> " << message;
  }
}

TEST(TopologyYaml, YamlSyntaxErrorsCarryTheLine) {
  const std::string original = ReferenceTopologyText();
  const std::string broken = ReplaceOnce(original, "  - { name: westus3,       stamp: us }",
                                         "  - { name: westus3,       stamp: us ");
  absl::StatusOr<v1::Topology> result = ParseTopologyYaml(broken, "topology.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::MatchesRegex("topology\\.yaml:[0-9]+:[0-9]+: .+"));
}

// Syntax errors point at the line where the problem is; an unclosed '[' or '{', which the
// parser notices only lines later, at the bracket, saying where it was noticed.
TEST(TopologyYaml, SyntaxErrorsPointAtTheBrokenLine) {
  struct Case {
    const char* what;
    std::string text;
    std::string error;  // the whole message, line and column included
  };
  const Case cases[] = {
      {"an unclosed flow sequence followed by more entries",
       "routes:\n"
       "  - name: gpt-4o\n"
       "    stamp: us\n"
       "    tiers: [ us-ptu, us-standard\n"
       "  - name: embed\n"
       "    tiers: [ us-embeddings ]\n",
       "t.yaml:4:12: this '[' is not closed (end of sequence flow not found, noticed at line 5)"},
      {"an unclosed flow sequence at the end of the file",
       "routes:\n"
       "  - name: gpt-4o\n"
       "    tiers: [ us-ptu,\n"
       "\n"
       "\n",
       "t.yaml:3:12: this '[' is not closed (end of sequence flow not found, noticed at line 6)"},
      {"an unclosed flow map, with brackets in a comment and a quoted scalar before it",
       "stamps:\n"
       "  - name: us  # [ not a list\n"
       "    description: 'a { b'\n"
       "  - { name: eu\n"
       "regions: []\n",
       "t.yaml:4:5: this '{' is not closed (end of map flow not found, noticed at line 5)"},
      {"a key indented deeper than its siblings",
       "stamps:\n"
       "  - name: us\n"
       "   description: x\n"
       "regions: []\n",
       "t.yaml:3:4: end of sequence not found"},
      {"a key indented less than its siblings",
       "stamps:\n"
       "  - name: us\n"
       "    description: x\n"
       "  regions: []\n",
       "t.yaml:4:3: end of map not found"},
      {"a tab in the indentation",
       "stamps:\n"
       "  - name: us\n"
       "\tdescription: x\n",
       "t.yaml:3:1: illegal tab when looking for indentation"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::Topology> result = ParseTopologyYaml(c.text, "t.yaml");
    ASSERT_FALSE(result.ok()) << c.what;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(result.status().message(), c.error) << c.what;
  }
}

TEST(TopologyYaml, MissingFileNamesThePath) {
  absl::StatusOr<v1::Topology> result = LoadTopologyFile("/nonexistent/topology.yaml");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("/nonexistent/topology.yaml"));
}

TEST(TopologyYaml, LoadTopologyFileReadsTheReference) {
  absl::StatusOr<v1::Topology> result = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tenants_size(), 3);
}

TEST(TopologyYaml, NumbersAcceptUnderscoresAndAliasesOfEnumCase) {
  absl::StatusOr<v1::Topology> result = ParseTopologyYaml(
      "tenants:\n  - { name: t, priority: CRITICAL, limits: { tokens_per_minute: 120_000 } }\n",
      "t.yaml");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->tenants(0).priority(), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(result->tenants(0).limits().tokens_per_minute(), 120000u);
}

TEST(TopologyYaml, EmptyDocumentIsAnEmptyTopology) {
  absl::StatusOr<v1::Topology> result = ParseTopologyYaml("", "empty.yaml");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->ByteSizeLong(), 0u);
}

}  // namespace
}  // namespace spillway
