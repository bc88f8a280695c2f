// Compiles a validated topology into one region's routing table: routes become split/tier
// lists of backend indices, backends are collected in the order routes first reach them.
#include "common/topology_compile.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/drain_names.h"
#include "common/topology_index.h"
#include "common/topology_validate.h"

namespace spillway {
namespace {

void SetNotice(const v1::Drain& drain, v1::DrainNotice* notice) {
  notice->set_drained(DrainLabel(drain));
  notice->set_reason(drain.reason());
  notice->set_keep_pinned(drain.keep_pinned());
}

// Standard capacity is counted in units of 1000 tokens per minute.
constexpr uint64_t kTokensPerStandardUnit = 1000;

template <typename T>
using Index = TopologyIndex<T>;

// Validation guarantees every name resolves, so lookups here cannot miss.
template <typename T>
const T& Get(const Index<T>& index, const std::string& name) {
  return *index.at(name);
}

}  // namespace

bool IsProvisioned(v1::Sku sku) {
  return sku == v1::SKU_PROVISIONED_MANAGED || sku == v1::SKU_GLOBAL_PROVISIONED_MANAGED ||
         sku == v1::SKU_DATA_ZONE_PROVISIONED_MANAGED;
}

// Name lookups over one topology, built once per RoutingTableCompiler.
struct RoutingTableCompiler::Indexes {
  Indexes(const v1::Topology& topology, const CompileOptions& options)
      : topology(topology), options(options) {
    IndexByName(topology.regions(), regions);
    IndexByName(topology.instances(), instances);
    IndexByName(topology.pools(), pools);
    for (const v1::Deployment& d : topology.deployments()) {
      deployments.try_emplace(absl::StrCat(d.instance(), "/", d.name()), &d);
    }
    for (const v1::Drain& drain : topology.drains()) {
      drains.try_emplace(DrainId(drain), &drain);
    }
  }

  // The drain covering a backend: its deployment's, else its instance's, else its region's.
  const v1::Drain* DrainOf(const std::string& deployment_id, const v1::Instance& instance) const {
    if (drains.empty()) {
      return nullptr;
    }
    for (const std::string& id : {DrainId(v1::DRAIN_SCOPE_DEPLOYMENT, deployment_id),
                                  DrainId(v1::DRAIN_SCOPE_INSTANCE, instance.name()),
                                  DrainId(v1::DRAIN_SCOPE_REGION, instance.region())}) {
      if (auto it = drains.find(id); it != drains.end()) {
        return it->second;
      }
    }
    return nullptr;
  }

  const v1::Topology& topology;
  const CompileOptions options;
  Index<v1::Region> regions;
  Index<v1::Instance> instances;
  Index<v1::Deployment> deployments;  // by "<instance>/<name>"
  Index<v1::Pool> pools;
  Index<v1::Drain> drains;  // by DrainId
};

namespace {

// One region's table: the state of a single compile, written into an empty `table`.
class Compiler {
 public:
  using Indexes = RoutingTableCompiler::Indexes;

  Compiler(const Indexes& indexes, v1::RoutingTable& table)
      : indexes_(indexes), topology_(indexes.topology), options_(indexes.options), table_(table) {}

  void Compile(const v1::Region& region, uint64_t version, int64_t now_unix_ms) {
    table_.set_version(version);
    table_.set_region(region.name());
    table_.set_stamp(region.stamp());
    table_.set_compiled_at_unix_ms(now_unix_ms);
    absl::flat_hash_set<std::string> served;
    for (const v1::Route& route : topology_.routes()) {
      if (route.stamp() == region.stamp()) {
        CompileRoute(route);
        served.insert(route.name());
      }
    }
    for (const v1::Tenant& tenant : topology_.tenants()) {
      if (tenant.stamp() == region.stamp()) {
        CompileTenant(tenant);
      }
    }
    for (const v1::Route& route : topology_.routes()) {
      if (route.stamp() != region.stamp() && !served.contains(route.name())) {
        (*table_.mutable_foreign_routes())[route.name()] = route.stamp();
      }
    }
    table_.set_open_access(topology_.tenants().empty());
    if (auto it = indexes_.drains.find(DrainId(v1::DRAIN_SCOPE_REGION, region.name()));
        it != indexes_.drains.end()) {
      SetNotice(*it->second, table_.mutable_region_drain());
    }
  }

 private:
  void CompileRoute(const v1::Route& route) {
    v1::CompiledRoute* out = table_.add_routes();
    out->set_name(route.name());
    out->set_locality(route.locality() == v1::LOCALITY_UNSPECIFIED ? v1::LOCALITY_PREFER_LOCAL
                                                                   : route.locality());
    out->set_first_byte_timeout_ms(route.first_byte_timeout_ms());
    out->set_max_upload_bytes(route.max_upload_bytes());
    if (route.split_size() == 0) {
      v1::CompiledSplit* split = out->add_splits();
      split->set_percent(100);
      CompileTiers(route.tiers(), split);
      return;
    }
    for (const v1::RouteSplit& split : route.split()) {
      v1::CompiledSplit* compiled = out->add_splits();
      compiled->set_percent(split.percent());
      CompileTiers(split.tiers(), compiled);
    }
  }

  void CompileTiers(const google::protobuf::RepeatedPtrField<std::string>& tiers,
                    v1::CompiledSplit* split) {
    for (const std::string& name : tiers) {
      const v1::Pool& pool = Get(indexes_.pools, name);
      v1::CompiledTier* tier = split->add_tiers();
      tier->set_pool(pool.name());
      if (pool.has_priority_limits()) {
        *tier->mutable_priority_limits() = pool.priority_limits();
      }
      for (const v1::PoolMember& member : pool.members()) {
        const uint32_t index = BackendIndex(member.deployment());
        v1::TierMember* out = tier->add_members();
        out->set_backend(index);
        out->set_weight(member.has_weight() ? member.weight() : 1);
        out->set_local(table_.backends(static_cast<int>(index)).region() == table_.region());
      }
    }
  }

  // The backend's position in the table, adding it on first reach.
  uint32_t BackendIndex(const std::string& id) {
    auto [it, inserted] =
        backend_index_.try_emplace(id, static_cast<uint32_t>(table_.backends_size()));
    if (!inserted) {
      return it->second;
    }
    const v1::Deployment& deployment = Get(indexes_.deployments, id);
    const v1::Instance& instance = Get(indexes_.instances, deployment.instance());
    v1::Backend* backend = table_.add_backends();
    backend->set_id(id);
    backend->set_instance(instance.name());
    backend->set_deployment(deployment.name());
    backend->set_region(instance.region());
    backend->set_subscription(instance.subscription());
    backend->set_endpoint(instance.endpoint());
    backend->set_insecure_http(instance.insecure_http());
    // Only the reference (env var, file, identity) travels: secrets stay on the agent host.
    *backend->mutable_auth() = instance.auth();
    backend->set_model(deployment.model());
    backend->set_model_version(deployment.version());
    backend->set_sku(deployment.sku());
    backend->set_capacity(deployment.capacity());
    const bool provisioned = IsProvisioned(deployment.sku());
    backend->set_provisioned(provisioned);
    backend->set_estimated_tokens_per_minute(
        uint64_t{deployment.capacity()} *
        (provisioned ? TokensPerPtuMinute(deployment) : kTokensPerStandardUnit));
    if (const v1::Drain* drain = indexes_.DrainOf(id, instance); drain != nullptr) {
      SetNotice(*drain, backend->mutable_drain());
    }
    return it->second;
  }

  uint64_t TokensPerPtuMinute(const v1::Deployment& deployment) const {
    if (options_.ptu_rates != nullptr) {
      if (const PtuRates* rates =
              FindRates(*options_.ptu_rates, deployment.model(), DeploymentType(deployment.sku()));
          rates != nullptr) {
        return static_cast<uint64_t>(rates->input_tpm_per_ptu);
      }
    }
    return options_.tokens_per_ptu_minute;
  }

  void CompileTenant(const v1::Tenant& tenant) {
    v1::CompiledTenant* out = table_.add_tenants();
    out->set_name(tenant.name());
    out->set_priority(tenant.priority() == v1::PRIORITY_UNSPECIFIED ? v1::PRIORITY_STANDARD
                                                                    : tenant.priority());
    *out->mutable_routes() = tenant.routes();
    if (tenant.has_limits()) {
      *out->mutable_limits() = tenant.limits();
    }
    *out->mutable_api_keys() = tenant.api_keys();
  }

  const Indexes& indexes_;
  const v1::Topology& topology_;
  const CompileOptions& options_;
  absl::flat_hash_map<std::string, uint32_t> backend_index_;
  v1::RoutingTable& table_;
};

}  // namespace

absl::StatusOr<RoutingTableCompiler> RoutingTableCompiler::Create(const v1::Topology& topology,
                                                                  const CompileOptions& options) {
  if (absl::Status status = ValidationStatus(ValidateTopology(topology)); !status.ok()) {
    return status;
  }
  return RoutingTableCompiler(std::make_unique<const Indexes>(topology, options));
}

RoutingTableCompiler::RoutingTableCompiler(std::unique_ptr<const Indexes> indexes)
    : indexes_(std::move(indexes)) {}
RoutingTableCompiler::RoutingTableCompiler(RoutingTableCompiler&&) noexcept = default;
RoutingTableCompiler& RoutingTableCompiler::operator=(RoutingTableCompiler&&) noexcept = default;
RoutingTableCompiler::~RoutingTableCompiler() = default;

absl::StatusOr<v1::RoutingTable> RoutingTableCompiler::Compile(absl::string_view region,
                                                               uint64_t version,
                                                               int64_t now_unix_ms) const {
  v1::RoutingTable table;
  if (absl::Status status = CompileInto(region, version, now_unix_ms, &table); !status.ok()) {
    return status;
  }
  return table;
}

absl::Status RoutingTableCompiler::CompileInto(absl::string_view region, uint64_t version,
                                               int64_t now_unix_ms, v1::RoutingTable* table) const {
  auto found = indexes_->regions.find(region);
  if (found == indexes_->regions.end()) {
    return absl::NotFoundError(absl::StrCat("region '", region, "' is not in the topology"));
  }
  table->Clear();
  Compiler(*indexes_, *table).Compile(*found->second, version, now_unix_ms);
  return absl::OkStatus();
}

absl::StatusOr<v1::RoutingTable> CompileRoutingTable(const v1::Topology& topology,
                                                     absl::string_view region, uint64_t version,
                                                     const CompileOptions& options) {
  absl::StatusOr<RoutingTableCompiler> compiler = RoutingTableCompiler::Create(topology, options);
  if (!compiler.ok()) {
    return compiler.status();
  }
  return compiler->Compile(region, version, options.now_unix_ms);
}

absl::Status SetPtuThroughput(const std::string& rates_path, uint64_t tokens_per_ptu_minute,
                              CompileOptions& options) {
  if (tokens_per_ptu_minute > 0) {
    options.tokens_per_ptu_minute = tokens_per_ptu_minute;
  }
  if (rates_path.empty() && tokens_per_ptu_minute > 0) {
    options.ptu_rates = nullptr;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<PtuRates>> rates = LoadRates(rates_path);
  if (!rates.ok()) {
    return rates.status();
  }
  options.ptu_rates = std::make_shared<const std::vector<PtuRates>>(*std::move(rates));
  return absl::OkStatus();
}

}  // namespace spillway
