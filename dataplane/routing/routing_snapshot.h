// The agent's immutable, request-ready view of one routing table: routes by name, tenants
// by key hash, backends with parsed addresses and resolved credentials. Requests hold a
// shared_ptr to the snapshot they started with; a new table swaps in a new snapshot.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dataplane/routing/backend_state.h"
#include "spillway/v1/routing_table.pb.h"

namespace spillway {

class EntraTokenSource;

struct UpstreamAddress {
  bool tls = false;
  std::string host;
  std::string port;
  std::string host_header;  // host[:port] as the Host header wants it
};

// http(s)://host[:port][/] -> address; anything else is an error naming the URL.
absl::StatusOr<UpstreamAddress> ParseEndpoint(absl::string_view url);

struct SnapshotRoute;

struct SnapshotBackend {
  const v1::Backend* config = nullptr;  // points into the snapshot's own table
  UpstreamAddress address;
  std::string path_prefix;  // "/openai/deployments/<deployment>"
  std::string api_key;      // resolved from the agent host's env or file; never logged
  // Microsoft Entra ID auth instead of api_key: the credential's shared token source.
  std::shared_ptr<EntraTokenSource> entra_token;
  std::string unusable_reason;  // non-empty: skipped by the router (e.g. missing key)
  bool local = false;
  int64_t window_capacity_tokens = 0;  // estimated TPM scaled to LoadWindow::kSlots seconds
  std::shared_ptr<BackendState> state;
  // The routes that reach it, by name: a call on an object this backend holds goes through
  // one of them that the tenant may use (its timeouts, its name in logs).
  std::vector<const SnapshotRoute*> routes;
};

struct SnapshotMember {
  uint32_t backend = 0;
  uint32_t weight = 1;
  bool local = false;
};

struct SnapshotTier {
  std::string pool;
  uint32_t index = 0;  // its place in the split: 0 the first choice, 1 the first spill, ...
  std::vector<SnapshotMember> members;
  uint32_t standard_ceiling_percent = 100;
  uint32_t batch_ceiling_percent = 100;
};

struct SnapshotSplit {
  uint32_t percent = 100;
  std::vector<SnapshotTier> tiers;
};

struct SnapshotRoute {
  std::string name;
  v1::Locality locality = v1::LOCALITY_PREFER_LOCAL;
  // New requests walk these; a drained backend is left out of them.
  std::vector<SnapshotSplit> splits;
  // Every backend the route reaches, drained ones too, in first-reached order: calls on
  // objects a backend holds go through its routes even while it is drained (keep_pinned).
  std::vector<uint32_t> backends;
  std::chrono::milliseconds first_byte_timeout{0};  // per attempt; 0: the agent's default
  uint64_t max_upload_bytes = 0;                    // streamed uploads; 0: the agent's default
};

struct SnapshotTenant {
  std::string name;
  v1::Priority priority = v1::PRIORITY_STANDARD;
  absl::flat_hash_set<std::string> routes;
  v1::TenantLimits limits;
};

struct SnapshotOptions {
  // Reads environment variables; tests substitute their own.
  std::function<const char*(const char*)> getenv = ::getenv;
  // --secrets-dir: api_key_file paths must resolve inside it; empty: anywhere.
  std::string secrets_dir;
};

class RoutingSnapshot {
 public:
  static absl::StatusOr<std::shared_ptr<const RoutingSnapshot>> Build(
      v1::RoutingTable table, BackendStateRegistry& states, const SnapshotOptions& options = {});

  const v1::RoutingTable& table() const { return table_; }
  uint64_t version() const { return table_.version(); }
  const std::vector<SnapshotBackend>& backends() const { return backends_; }

  const SnapshotRoute* FindRoute(absl::string_view name) const;
  // The index in backends() of the backend with this id ("<instance>/<deployment>").
  std::optional<uint32_t> FindBackend(absl::string_view id) const;
  // The tenant whose key this is, comparing SHA-256 digests in constant time; null if none.
  const SnapshotTenant* FindTenantByKey(absl::string_view presented_key) const;
  // Only a topology without any tenant admits every client (single-team mode); an empty
  // tenant list because this stamp has none admits nobody.
  bool open_access() const { return table_.open_access(); }

 private:
  RoutingSnapshot() = default;

  v1::RoutingTable table_;
  std::vector<SnapshotBackend> backends_;
  absl::flat_hash_map<std::string, SnapshotRoute> routes_;
  absl::flat_hash_map<std::string, uint32_t> backend_by_id_;
  std::vector<SnapshotTenant> tenants_;
  // Raw 32-byte digest -> index into tenants_.
  absl::flat_hash_map<std::string, std::size_t> tenant_by_digest_;
};

using RoutingSnapshotPtr = std::shared_ptr<const RoutingSnapshot>;

}  // namespace spillway
