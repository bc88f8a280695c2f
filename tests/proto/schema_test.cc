// The schema compiles and holds the invariants the YAML mapping and the wire rely on.
#include <set>
#include <string>

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "spillway/v1/admin.grpc.pb.h"
#include "spillway/v1/agent_sync.grpc.pb.h"
#include "spillway/v1/options.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// Every enum an operator writes in YAML has a spelling for each meaningful value, and no
// two values share one.
void ExpectYamlNames(const google::protobuf::EnumDescriptor* type) {
  std::set<std::string> seen;
  for (int i = 0; i < type->value_count(); ++i) {
    const auto* value = type->value(i);
    const std::string& yaml_name = value->options().GetExtension(v1::yaml_name);
    if (value->number() == 0) {
      EXPECT_TRUE(yaml_name.empty()) << value->full_name();
      continue;
    }
    EXPECT_FALSE(yaml_name.empty()) << value->full_name() << " has no yaml_name";
    EXPECT_TRUE(seen.insert(yaml_name).second) << "duplicate yaml_name " << yaml_name;
  }
}

void ExpectAllEnumsNamed(const Descriptor* descriptor, std::set<const Descriptor*>* visited) {
  if (!visited->insert(descriptor).second) {
    return;
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->enum_type() != nullptr) {
      ExpectYamlNames(field->enum_type());
    }
    if (field->message_type() != nullptr) {
      ExpectAllEnumsNamed(field->message_type(), visited);
    }
  }
}

TEST(Schema, EveryTopologyEnumHasYamlSpellings) {
  std::set<const Descriptor*> visited;
  ExpectAllEnumsNamed(v1::Topology::descriptor(), &visited);
  EXPECT_GE(visited.size(), 10u);
}

TEST(Schema, AzureSkuNamesAreTheYamlNames) {
  const auto* sku = v1::Sku_descriptor();
  EXPECT_EQ(sku->FindValueByNumber(v1::SKU_DATA_ZONE_PROVISIONED_MANAGED)
                ->options()
                .GetExtension(v1::yaml_name),
            "DataZoneProvisionedManaged");
  EXPECT_EQ(sku->value_count(), 7);
}

TEST(Schema, RoutingTableRoundTripsOnTheWire) {
  v1::ControlMessage message;
  v1::RoutingTable* table = message.mutable_table();
  table->set_version(42);
  table->set_region("eastus2");
  v1::Backend* backend = table->add_backends();
  backend->set_id("aoai-eus2-ptu/gpt-4o-ptu");
  backend->mutable_auth()->set_managed_identity(true);
  v1::CompiledTier* tier = table->add_routes()->add_splits()->add_tiers();
  tier->add_members()->set_backend(0);

  std::string wire;
  ASSERT_TRUE(message.SerializeToString(&wire));
  v1::ControlMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_EQ(parsed.message_case(), v1::ControlMessage::kTable);
  EXPECT_EQ(parsed.table().version(), 42u);
  EXPECT_EQ(parsed.table().backends(0).auth().method_case(), v1::InstanceAuth::kManagedIdentity);
}

TEST(Schema, ServicesExposeTheirMethods) {
  const auto* admin = v1::Admin::service_full_name();
  EXPECT_STREQ(admin, "spillway.v1.Admin");
  EXPECT_STREQ(v1::AgentSync::service_full_name(), "spillway.v1.AgentSync");
  const auto* sync = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
      "spillway.v1.AgentSync.Sync");
  ASSERT_NE(sync, nullptr);
  EXPECT_TRUE(sync->client_streaming());
  EXPECT_TRUE(sync->server_streaming());
}

// Instances hold only references to secrets: every field that names a key or a secret says
// where the agent host keeps it (an environment variable or a file), never the value.
void ExpectOnlySecretReferences(const Descriptor* descriptor) {
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    const std::string& name = field->name();
    const bool names_secret = name.find("secret") != std::string::npos ||
                              name.find("key") != std::string::npos ||
                              name.find("token") != std::string::npos;
    const bool is_reference = absl::EndsWith(name, "_env") || absl::EndsWith(name, "_file");
    EXPECT_TRUE(!names_secret || is_reference) << descriptor->name() << "." << name;
    if (field->message_type() != nullptr) {
      ExpectOnlySecretReferences(field->message_type());
    }
  }
}

TEST(Schema, InstanceAuthHoldsNoSecretValues) {
  ExpectOnlySecretReferences(v1::InstanceAuth::descriptor());
}

}  // namespace
}  // namespace spillway
