// The reference topology is valid; each rule is shown by breaking one entry of a copy of it,
// and a copy broken in several places reports every fault.
#include "common/topology_validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/topology_yaml.h"
#include "tests/support/reference_topology.h"

namespace spillway {

// Readable failures: gtest prints problems instead of bytes.
void PrintTo(const ValidationProblem& problem, std::ostream* os) {
  *os << problem.kind << " '" << problem.name << "': " << problem.message;
}

namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using test::ReferenceTopology;

auto Problem(const std::string& kind, const std::string& name, const std::string& message) {
  return AllOf(Field(&ValidationProblem::kind, kind), Field(&ValidationProblem::name, name),
               Field(&ValidationProblem::message, HasSubstr(message)));
}

std::vector<ValidationProblem> ValidateMutated(const std::function<void(v1::Topology&)>& mutate) {
  v1::Topology topology = ReferenceTopology();
  mutate(topology);
  return ValidateTopology(topology);
}

TEST(TopologyValidate, ReferenceTopologyIsValid) {
  ASSERT_GT(ReferenceTopology().routes_size(), 0);
  EXPECT_THAT(ValidateTopology(ReferenceTopology()), IsEmpty());
  EXPECT_TRUE(ValidationStatus(ValidateTopology(ReferenceTopology())).ok());
}

// Variations the rules must keep accepting.
struct Accepted {
  std::string label;
  std::function<void(v1::Topology&)> mutate;
};

void PrintTo(const Accepted& accepted, std::ostream* os) { *os << accepted.label; }

class TopologyValidateAccepts : public ::testing::TestWithParam<Accepted> {};

TEST_P(TopologyValidateAccepts, NoProblems) {
  EXPECT_THAT(ValidateMutated(GetParam().mutate), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Rules, TopologyValidateAccepts,
    ::testing::Values(
        Accepted{"HttpEndpointWithInsecureHttp",
                 [](v1::Topology& t) {
                   t.mutable_instances(0)->set_endpoint("http://127.0.0.1:9001");
                   t.mutable_instances(0)->set_insecure_http(true);
                 }},
        Accepted{"EndpointWithTrailingSlash",
                 [](v1::Topology& t) {
                   t.mutable_instances(0)->set_endpoint("https://aoai.openai.azure.com/");
                 }},
        Accepted{"ClientCredentials",
                 [](v1::Topology& t) {
                   v1::ClientCredentials* cc =
                       t.mutable_instances(0)->mutable_auth()->mutable_client_credentials();
                   cc->set_tenant_id("contoso");
                   cc->set_client_id("spillway");
                   cc->set_client_secret_file("/etc/spillway/sp-secret");
                 }},
        Accepted{"UserAssignedManagedIdentity",
                 [](v1::Topology& t) {
                   t.mutable_instances(0)->mutable_auth()->set_managed_identity_client_id("id");
                 }},
        Accepted{"UnspecifiedPriorityAndLocality",
                 [](v1::Topology& t) {
                   t.mutable_tenants(0)->clear_priority();
                   t.mutable_routes(0)->clear_locality();
                 }},
        Accepted{"LimitsAtTheirMaximum",
                 [](v1::Topology& t) {
                   t.mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(10'000'000'000);
                   t.mutable_tenants(0)->mutable_limits()->set_requests_per_minute(100'000'000);
                 }},
        Accepted{"PoolLimitsAndWeightsAtTheirBounds",
                 [](v1::Topology& t) {
                   t.mutable_pools(2)->mutable_priority_limits()->set_standard(100);
                   t.mutable_pools(2)->mutable_priority_limits()->set_batch(100);
                   t.mutable_pools(2)->mutable_members(0)->set_weight(1000);
                   t.mutable_deployments(0)->set_capacity(100000);
                 }}),
    [](const ::testing::TestParamInfo<Accepted>& info) { return info.param.label; });

// One broken entry and the problem it must produce.
struct Rejected {
  std::string label;
  std::function<void(v1::Topology&)> mutate;
  std::string kind;
  std::string name;
  std::string message;
};

void PrintTo(const Rejected& rejected, std::ostream* os) { *os << rejected.label; }

class TopologyValidateRejects : public ::testing::TestWithParam<Rejected> {};

TEST_P(TopologyValidateRejects, NamesKindAndEntry) {
  const Rejected& c = GetParam();
  const std::vector<ValidationProblem> problems = ValidateMutated(c.mutate);
  EXPECT_THAT(problems, Contains(Problem(c.kind, c.name, c.message)));
  const absl::Status status = ValidationStatus(problems);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(c.kind + " '" + c.name + "': "));
}

const std::string kLongName(65, 'a');

std::vector<Rejected> RejectedCases() {
  return {
      // Names.
      {"EmptyName", [](v1::Topology& t) { t.mutable_stamps(1)->clear_name(); }, "stamp", "#2",
       "name is empty"},
      {"MalformedName", [](v1::Topology& t) { t.mutable_instances(0)->set_name("aoai eus2"); },
       "instance", "aoai eus2", "may only contain letters, digits"},
      {"LongName", [](v1::Topology& t) { t.mutable_pools(0)->set_name(kLongName); }, "pool",
       kLongName, "longer than 64"},
      {"MalformedDeploymentName",
       [](v1::Topology& t) { t.mutable_deployments(0)->set_name("gpt/4o"); }, "deployment",
       "aoai-eus2-ptu/gpt/4o", "may only contain"},
      {"MalformedRouteName",
       [](v1::Topology& t) { t.mutable_routes(2)->set_name("text embedding"); }, "route",
       "text embedding", "(stamp us) name 'text embedding' may only contain"},
      {"EmptyApiKeyName",
       [](v1::Topology& t) { t.mutable_tenants(0)->mutable_api_keys(0)->clear_name(); }, "tenant",
       "checkout-assistant", "api key #1: name is empty"},
      // Duplicates.
      {"DuplicateStamp", [](v1::Topology& t) { t.add_stamps()->set_name("us"); }, "stamp", "us",
       "declared more than once"},
      {"DuplicateRegion", [](v1::Topology& t) { *t.add_regions() = t.regions(0); }, "region",
       "eastus2", "declared more than once"},
      {"DuplicateSubscription",
       [](v1::Topology& t) { *t.add_subscriptions() = t.subscriptions(1); }, "subscription",
       "ai-platform-prod-2", "declared more than once"},
      {"DuplicateInstance", [](v1::Topology& t) { *t.add_instances() = t.instances(0); },
       "instance", "aoai-eus2-ptu", "declared more than once"},
      {"DuplicateDeployment", [](v1::Topology& t) { *t.add_deployments() = t.deployments(0); },
       "deployment", "aoai-eus2-ptu/gpt-4o-ptu", "declared more than once on its instance"},
      {"DuplicatePool", [](v1::Topology& t) { *t.add_pools() = t.pools(0); }, "pool",
       "us-workload-ptu", "declared more than once"},
      {"DuplicateRouteInStamp", [](v1::Topology& t) { *t.add_routes() = t.routes(0); }, "route",
       "gpt-4o", "(stamp us) is declared more than once in its stamp"},
      {"DuplicateTenant",
       [](v1::Topology& t) {
         v1::Tenant* copy = t.add_tenants();
         *copy = t.tenants(2);
         copy->clear_api_keys();
       },
       "tenant", "eu-helpdesk", "declared more than once"},
      {"DuplicateApiKeyName",
       [](v1::Topology& t) {
         v1::ApiKey* key = t.mutable_tenants(0)->add_api_keys();
         key->set_name("prod");
         key->set_sha256(std::string(64, 'a'));
       },
       "tenant", "checkout-assistant", "api key name 'prod' is used more than once"},
      {"SameKeyHashInTwoTenants",
       [](v1::Topology& t) {
         t.mutable_tenants(1)->mutable_api_keys(0)->set_sha256(t.tenants(0).api_keys(0).sha256());
       },
       "tenant", "nightly-summaries",
       "api key 'prod' has the same sha256 as api key 'prod' of tenant 'checkout-assistant'"},
      {"SameKeyHashTwiceInOneTenant",
       [](v1::Topology& t) {
         v1::ApiKey* key = t.mutable_tenants(0)->add_api_keys();
         key->set_name("rotated");
         key->set_sha256(t.tenants(0).api_keys(0).sha256());
       },
       "tenant", "checkout-assistant", "api key 'rotated' has the same sha256"},
      // Dangling references.
      {"RegionUnknownStamp", [](v1::Topology& t) { t.mutable_regions(0)->set_stamp("apac"); },
       "region", "eastus2", "stamp 'apac' does not exist"},
      {"RegionWithoutStamp", [](v1::Topology& t) { t.mutable_regions(0)->clear_stamp(); }, "region",
       "eastus2", "stamp is not set"},
      {"InstanceUnknownRegion",
       [](v1::Topology& t) { t.mutable_instances(0)->set_region("centralus"); }, "instance",
       "aoai-eus2-ptu", "region 'centralus' does not exist"},
      {"InstanceUnknownSubscription",
       [](v1::Topology& t) { t.mutable_instances(0)->set_subscription("other"); }, "instance",
       "aoai-eus2-ptu", "subscription 'other' does not exist"},
      {"DeploymentUnknownInstance",
       [](v1::Topology& t) { t.mutable_deployments(5)->set_instance("aoai-nope"); }, "deployment",
       "aoai-nope/embed-3", "instance 'aoai-nope' does not exist"},
      {"PoolMemberUnknownDeployment",
       [](v1::Topology& t) {
         t.mutable_pools(0)->mutable_members(0)->set_deployment("aoai-eus2-ptu/gpt-5");
       },
       "pool", "us-workload-ptu", "member deployment 'aoai-eus2-ptu/gpt-5' does not exist"},
      {"RouteUnknownStamp", [](v1::Topology& t) { t.mutable_routes(2)->set_stamp("apac"); },
       "route", "text-embedding-3-large", "stamp 'apac' does not exist"},
      {"RouteUnknownTierPool",
       [](v1::Topology& t) { t.mutable_routes(0)->set_tiers(1, "us-missing"); }, "route", "gpt-4o",
       "(stamp us) pool 'us-missing' does not exist"},
      {"RouteUnknownSplitPool",
       [](v1::Topology& t) { t.mutable_routes(1)->mutable_split(1)->set_tiers(0, "nope"); },
       "route", "gpt-4o-canary", "split 2: pool 'nope' does not exist"},
      {"TenantUnknownStamp", [](v1::Topology& t) { t.mutable_tenants(2)->set_stamp("apac"); },
       "tenant", "eu-helpdesk", "stamp 'apac' does not exist"},
      {"TenantUnknownRoute", [](v1::Topology& t) { t.mutable_tenants(0)->add_routes("gpt-5"); },
       "tenant", "checkout-assistant", "route 'gpt-5' does not exist"},
      {"TenantRouteOfOtherStamp",
       [](v1::Topology& t) { t.mutable_tenants(2)->add_routes("gpt-4o-canary"); }, "tenant",
       "eu-helpdesk", "route 'gpt-4o-canary' is in stamp us, tenant is in stamp eu"},
      // Stamps.
      {"RouteTierCrossesStamp",
       [](v1::Topology& t) { t.mutable_routes(0)->add_tiers("eu-standard"); }, "route", "gpt-4o",
       "(stamp us) tier 'eu-standard' reaches deployment 'aoai-swc-std/gpt-4o' in stamp eu"},
      {"PoolSpansStamps",
       [](v1::Topology& t) {
         t.mutable_pools(2)->add_members()->set_deployment("aoai-swc-std/gpt-4o");
       },
       "pool", "us-standard",
       "members span stamps ('aoai-eus2-std/gpt-4o' is in stamp us, 'aoai-swc-std/gpt-4o' is in "
       "stamp eu)"},
      // Model consistency.
      {"FailoverTiersDifferInVersion",
       [](v1::Topology& t) { t.mutable_routes(0)->add_tiers("us-standard-next"); }, "route",
       "gpt-4o",
       "tier 'us-standard-next' reaches 'aoai-eus2-std/gpt-4o-next' serving gpt-4o 2024-11-20, "
       "but tier 'us-workload-ptu' reaches 'aoai-eus2-ptu/gpt-4o-ptu' serving gpt-4o 2024-08-06"},
      {"PoolMembersDifferInModel",
       [](v1::Topology& t) { t.mutable_deployments(3)->set_model("gpt-4o-mini"); }, "route",
       "gpt-4o", "reaches 'aoai-wus3-std/gpt-4o' serving gpt-4o-mini 2024-08-06"},
      {"SplitTiersDifferWithinOneSplit",
       [](v1::Topology& t) {
         t.mutable_routes(1)->mutable_split(0)->add_tiers("us-standard-next");
       },
       "route", "gpt-4o-canary",
       "split 1: tier 'us-standard-next' reaches 'aoai-eus2-std/gpt-4o-next' serving gpt-4o "
       "2024-11-20, but tier 'us-standard' reaches 'aoai-eus2-std/gpt-4o' serving gpt-4o "
       "2024-08-06"},
      // Instances.
      {"EndpointScheme",
       [](v1::Topology& t) { t.mutable_instances(0)->set_endpoint("ftp://aoai.example"); },
       "instance", "aoai-eus2-ptu", "must start with http:// or https://"},
      {"HttpEndpointWithoutInsecureHttp",
       [](v1::Topology& t) { t.mutable_instances(0)->set_endpoint("http://127.0.0.1:9001"); },
       "instance", "aoai-eus2-ptu",
       "is http://, which would send the api-key or token in clear text; use https:// or set "
       "insecure_http: true on the instance"},
      {"EndpointMissing", [](v1::Topology& t) { t.mutable_instances(0)->clear_endpoint(); },
       "instance", "aoai-eus2-ptu", "must start with http:// or https://"},
      {"EndpointWithoutHost",
       [](v1::Topology& t) { t.mutable_instances(0)->set_endpoint("https://"); }, "instance",
       "aoai-eus2-ptu", "has no host"},
      {"EndpointWithPath",
       [](v1::Topology& t) {
         t.mutable_instances(0)->set_endpoint("https://aoai.openai.azure.com/openai");
       },
       "instance", "aoai-eus2-ptu", "without path, query or credentials"},
      {"EndpointBadPort",
       [](v1::Topology& t) { t.mutable_instances(0)->set_endpoint("https://127.0.0.1:99999"); },
       "instance", "aoai-eus2-ptu", "has a bad port"},
      {"EndpointEmptyPort",
       [](v1::Topology& t) { t.mutable_instances(0)->set_endpoint("https://127.0.0.1:"); },
       "instance", "aoai-eus2-ptu", "has a bad port"},
      {"EndpointMalformedHost",
       [](v1::Topology& t) { t.mutable_instances(0)->set_endpoint("https://[::1]:9001"); },
       "instance", "aoai-eus2-ptu", "has a malformed host"},
      {"AuthWithoutMethod", [](v1::Topology& t) { t.mutable_instances(0)->clear_auth(); },
       "instance", "aoai-eus2-ptu", "auth sets no method"},
      {"ManagedIdentityFalse",
       [](v1::Topology& t) { t.mutable_instances(0)->mutable_auth()->set_managed_identity(false); },
       "instance", "aoai-eus2-ptu", "auth.managed_identity must be true"},
      {"ApiKeyEnvMalformed",
       [](v1::Topology& t) { t.mutable_instances(2)->mutable_auth()->set_api_key_env("MY KEY"); },
       "instance", "aoai-eus2-std", "auth.api_key_env 'MY KEY' is not an environment variable"},
      {"ApiKeyFileEmpty",
       [](v1::Topology& t) { t.mutable_instances(3)->mutable_auth()->set_api_key_file(""); },
       "instance", "aoai-wus3-std", "auth.api_key_file is empty"},
      {"ClientCredentialsWithoutTenant",
       [](v1::Topology& t) {
         v1::ClientCredentials* cc =
             t.mutable_instances(0)->mutable_auth()->mutable_client_credentials();
         cc->set_client_id("spillway");
         cc->set_client_secret_env("SP_SECRET");
       },
       "instance", "aoai-eus2-ptu", "client_credentials.tenant_id is not set"},
      {"ClientCredentialsWithoutClient",
       [](v1::Topology& t) {
         v1::ClientCredentials* cc =
             t.mutable_instances(0)->mutable_auth()->mutable_client_credentials();
         cc->set_tenant_id("contoso");
         cc->set_client_secret_env("SP_SECRET");
       },
       "instance", "aoai-eus2-ptu", "client_credentials.client_id is not set"},
      {"ClientCredentialsTwoSecrets",
       [](v1::Topology& t) {
         v1::ClientCredentials* cc =
             t.mutable_instances(0)->mutable_auth()->mutable_client_credentials();
         cc->set_tenant_id("contoso");
         cc->set_client_id("spillway");
         cc->set_client_secret_env("SP_SECRET");
         cc->set_client_secret_file("/etc/spillway/sp-secret");
       },
       "instance", "aoai-eus2-ptu", "exactly one of client_secret_env and client_secret_file"},
      {"ClientCredentialsNoSecret",
       [](v1::Topology& t) {
         v1::ClientCredentials* cc =
             t.mutable_instances(0)->mutable_auth()->mutable_client_credentials();
         cc->set_tenant_id("contoso");
         cc->set_client_id("spillway");
       },
       "instance", "aoai-eus2-ptu", "exactly one of client_secret_env and client_secret_file"},
      {"ManagedIdentityClientIdWithApiKey",
       [](v1::Topology& t) {
         t.mutable_instances(2)->mutable_auth()->set_managed_identity_client_id("id");
       },
       "instance", "aoai-eus2-std", "managed_identity_client_id is only used with"},
      // Deployments.
      {"SkuUnset", [](v1::Topology& t) { t.mutable_deployments(0)->clear_sku(); }, "deployment",
       "aoai-eus2-ptu/gpt-4o-ptu", "sku is not set"},
      {"SkuUnknownValue",
       [](v1::Topology& t) { t.mutable_deployments(0)->set_sku(static_cast<v1::Sku>(42)); },
       "deployment", "aoai-eus2-ptu/gpt-4o-ptu", "sku 42 is not a known value"},
      {"ModelUnset", [](v1::Topology& t) { t.mutable_deployments(5)->clear_model(); }, "deployment",
       "aoai-eus2-std/embed-3", "model is not set"},
      {"VersionUnset", [](v1::Topology& t) { t.mutable_deployments(5)->clear_version(); },
       "deployment", "aoai-eus2-std/embed-3", "version is not set"},
      {"CapacityZero", [](v1::Topology& t) { t.mutable_deployments(0)->set_capacity(0); },
       "deployment", "aoai-eus2-ptu/gpt-4o-ptu", "capacity 0 is outside 1..100000"},
      {"CapacityTooLarge", [](v1::Topology& t) { t.mutable_deployments(0)->set_capacity(100001); },
       "deployment", "aoai-eus2-ptu/gpt-4o-ptu", "capacity 100001 is outside 1..100000"},
      // Pools.
      {"PoolWithoutMembers", [](v1::Topology& t) { t.mutable_pools(4)->clear_members(); }, "pool",
       "us-embeddings", "has no members"},
      {"PoolMemberTwice",
       [](v1::Topology& t) { *t.mutable_pools(2)->add_members() = t.pools(2).members(0); }, "pool",
       "us-standard", "lists deployment 'aoai-eus2-std/gpt-4o' more than once"},
      {"WeightZero", [](v1::Topology& t) { t.mutable_pools(5)->mutable_members(1)->set_weight(0); },
       "pool", "eu-standard", "weight 0 is outside 1..1000"},
      {"WeightTooLarge",
       [](v1::Topology& t) { t.mutable_pools(5)->mutable_members(1)->set_weight(1001); }, "pool",
       "eu-standard", "weight 1001 is outside 1..1000"},
      {"StandardLimitZero",
       [](v1::Topology& t) { t.mutable_pools(0)->mutable_priority_limits()->set_standard(0); },
       "pool", "us-workload-ptu", "priority_limits.standard 0 is outside 1..100"},
      {"BatchLimitTooLarge",
       [](v1::Topology& t) { t.mutable_pools(0)->mutable_priority_limits()->set_batch(101); },
       "pool", "us-workload-ptu", "priority_limits.batch 101 is outside 1..100"},
      {"BatchAboveStandard",
       [](v1::Topology& t) {
         t.mutable_pools(0)->mutable_priority_limits()->set_standard(60);
         t.mutable_pools(0)->mutable_priority_limits()->set_batch(80);
       },
       "pool", "us-workload-ptu", "priority_limits.batch 80 is above priority_limits.standard 60"},
      // Routes.
      {"TiersAndSplit",
       [](v1::Topology& t) { *t.mutable_routes(0)->mutable_split() = t.routes(1).split(); },
       "route", "gpt-4o", "has both tiers and split"},
      {"NeitherTiersNorSplit", [](v1::Topology& t) { t.mutable_routes(2)->clear_tiers(); }, "route",
       "text-embedding-3-large", "has neither tiers nor split"},
      {"TooManyTiers",
       [](v1::Topology& t) {
         v1::Route* route = t.mutable_routes(2);
         for (int i = 0; i < 8; ++i) {
           v1::Pool* pool = t.add_pools();
           *pool = t.pools(4);
           pool->set_name("us-embeddings-" + std::to_string(i));
           route->add_tiers(pool->name());
         }
       },
       "route", "text-embedding-3-large", "lists 9 tiers; at most 8 are allowed"},
      {"PoolRepeatedInTiers",
       [](v1::Topology& t) { t.mutable_routes(0)->add_tiers("us-workload-ptu"); }, "route",
       "gpt-4o", "lists pool 'us-workload-ptu' more than once"},
      {"PoolRepeatedInSplitTiers",
       [](v1::Topology& t) { t.mutable_routes(1)->mutable_split(0)->add_tiers("us-standard"); },
       "route", "gpt-4o-canary", "split 1: lists pool 'us-standard' more than once"},
      {"SplitPercentZero",
       [](v1::Topology& t) {
         t.mutable_routes(1)->mutable_split(0)->set_percent(100);
         t.mutable_routes(1)->mutable_split(1)->set_percent(0);
       },
       "route", "gpt-4o-canary", "split 2 percent 0 is outside 1..100"},
      {"SplitPercentAbove100",
       [](v1::Topology& t) { t.mutable_routes(1)->mutable_split(0)->set_percent(101); }, "route",
       "gpt-4o-canary", "split 1 percent 101 is outside 1..100"},
      {"SplitSumNot100",
       [](v1::Topology& t) { t.mutable_routes(1)->mutable_split(1)->set_percent(20); }, "route",
       "gpt-4o-canary", "split percents add up to 110, not 100"},
      {"SplitWithoutTiers",
       [](v1::Topology& t) { t.mutable_routes(1)->mutable_split(1)->clear_tiers(); }, "route",
       "gpt-4o-canary", "split 2 has no tiers"},
      {"RouteWithoutStamp", [](v1::Topology& t) { t.mutable_routes(2)->clear_stamp(); }, "route",
       "text-embedding-3-large", "stamp is not set"},
      {"LocalityUnknownValue",
       [](v1::Topology& t) { t.mutable_routes(0)->set_locality(static_cast<v1::Locality>(42)); },
       "route", "gpt-4o", "locality 42 is not a known value"},
      // Tenants.
      {"TenantWithoutStamp", [](v1::Topology& t) { t.mutable_tenants(0)->clear_stamp(); }, "tenant",
       "checkout-assistant", "stamp is not set"},
      {"PriorityUnknownValue",
       [](v1::Topology& t) { t.mutable_tenants(0)->set_priority(static_cast<v1::Priority>(42)); },
       "tenant", "checkout-assistant", "priority 42 is not a known value"},
      {"TokensPerMinuteTooLarge",
       [](v1::Topology& t) {
         t.mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(10'000'000'001);
       },
       "tenant", "checkout-assistant", "limits.tokens_per_minute 10000000001 is above"},
      {"RequestsPerMinuteTooLarge",
       [](v1::Topology& t) {
         t.mutable_tenants(0)->mutable_limits()->set_requests_per_minute(100'000'001);
       },
       "tenant", "checkout-assistant", "limits.requests_per_minute 100000001 is above"},
      {"KeyHashUppercase",
       [](v1::Topology& t) {
         t.mutable_tenants(0)->mutable_api_keys(0)->set_sha256(std::string(64, 'A'));
       },
       "tenant", "checkout-assistant", "api key 'prod': sha256 must be 64 lowercase hex"},
      {"KeyHashShort",
       [](v1::Topology& t) { t.mutable_tenants(0)->mutable_api_keys(0)->set_sha256("9f86d081"); },
       "tenant", "checkout-assistant", "api key 'prod': sha256 must be 64 lowercase hex"},
      {"TenantWithoutRoutes", [](v1::Topology& t) { t.mutable_tenants(1)->clear_routes(); },
       "tenant", "nightly-summaries", "has no routes"},
  };
}

INSTANTIATE_TEST_SUITE_P(Rules, TopologyValidateRejects, ::testing::ValuesIn(RejectedCases()),
                         [](const ::testing::TestParamInfo<Rejected>& info) {
                           return info.param.label;
                         });

TEST(TopologyValidate, ReportsEveryProblemNotJustTheFirst) {
  const std::vector<ValidationProblem> problems = ValidateMutated([](v1::Topology& t) {
    t.mutable_regions(1)->set_stamp("apac");
    t.mutable_deployments(0)->set_capacity(0);
    t.mutable_routes(0)->add_tiers("eu-standard");
    t.mutable_tenants(2)->mutable_api_keys(0)->set_sha256("not-a-hash");
  });
  EXPECT_THAT(problems, Contains(Problem("region", "westus3", "stamp 'apac' does not exist")));
  EXPECT_THAT(problems, Contains(Problem("deployment", "aoai-eus2-ptu/gpt-4o-ptu", "capacity 0")));
  EXPECT_THAT(problems, Contains(Problem("route", "gpt-4o", "tier 'eu-standard' reaches")));
  EXPECT_THAT(problems, Contains(Problem("tenant", "eu-helpdesk", "sha256 must be 64")));

  const absl::Status status = ValidationStatus(problems);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::vector<std::string> lines = absl::StrSplit(status.message(), '\n');
  EXPECT_EQ(lines.size(), problems.size() + 1);
  EXPECT_EQ(lines[0], absl::StrCat("topology invalid (", problems.size(), " problems):"));
  EXPECT_THAT(lines, Contains("  region 'westus3': stamp 'apac' does not exist"));
  EXPECT_THAT(lines, Contains("  route 'gpt-4o': (stamp us) tier 'eu-standard' reaches deployment "
                              "'aoai-swc-std/gpt-4o' in stamp eu"));
}

TEST(TopologyValidate, SplitsMayServeDifferentVersions) {
  // gpt-4o-canary sends 10 % to 2024-11-20 and 90 % to 2024-08-06: the blue-green exception.
  const std::vector<ValidationProblem> problems = ValidateTopology(ReferenceTopology());
  EXPECT_THAT(problems, Not(Contains(Field(&ValidationProblem::name, "gpt-4o-canary"))));
  EXPECT_EQ(ReferenceTopology().routes(1).split(1).tiers(0), "us-standard-next");
}

TEST(TopologyValidate, CrossStampReachIsReportedOncePerDeployment) {
  const std::vector<ValidationProblem> problems = ValidateMutated([](v1::Topology& t) {
    t.mutable_routes(1)->mutable_split(0)->add_tiers("eu-standard");
    t.mutable_routes(1)->mutable_split(1)->add_tiers("eu-standard");
  });
  int reaches = 0;
  for (const ValidationProblem& problem : problems) {
    if (problem.message.find("reaches deployment 'aoai-swc-std/gpt-4o'") != std::string::npos) {
      ++reaches;
    }
  }
  EXPECT_EQ(reaches, 1);
}

TEST(TopologyValidate, EmptyTopologyIsValid) {
  EXPECT_THAT(ValidateTopology(v1::Topology()), IsEmpty());
  EXPECT_TRUE(ValidationStatus({}).ok());
}

}  // namespace
}  // namespace spillway
