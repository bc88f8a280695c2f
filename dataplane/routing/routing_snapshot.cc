// Builds a RoutingSnapshot from a compiled routing table. Everything a request needs is
// resolved here, once per table, so the request path does lookups only.
#include "dataplane/routing/routing_snapshot.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/secret_file.h"

namespace spillway {
namespace {

using Sha256Digest = std::array<char, SHA256_DIGEST_LENGTH>;

// OpenSSL 3's one-shot SHA256() fetches the algorithm under a lock and allocates a context
// on every call; every request digests its client key, so each thread keeps one context
// and the algorithm is fetched once.
Sha256Digest Sha256(absl::string_view data) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  Sha256Digest digest{};
  unsigned int size = 0;
  if (kSha256 == nullptr || context == nullptr ||
      EVP_DigestInit_ex2(context.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), reinterpret_cast<unsigned char*>(digest.data()), &size) !=
          1) {
    // Unreachable with a working libcrypto; an all-zero digest matches no stored key.
    digest.fill(0);
  }
  return digest;
}

// An application presents the same key on every request: each thread remembers the digests of
// the keys it saw (SHA-256 was ~2k instructions of the agent's ~60k per request, callgrind).
// Bounded, and cleared when full, so a flood of random keys costs only the digests it would
// have cost anyway. The keys live only in this process's memory, as they do while a request is
// read; absl's per-process hash seed keeps lookups from comparing bytes of unrelated keys.
const Sha256Digest& ClientKeyDigest(absl::string_view key) {
  constexpr std::size_t kMaxCachedKeys = 1024;
  thread_local absl::flat_hash_map<std::string, Sha256Digest> digests;
  if (auto it = digests.find(key); it != digests.end()) {
    return it->second;
  }
  if (digests.size() >= kMaxCachedKeys) {
    digests.clear();
  }
  return digests.emplace(key, Sha256(key)).first->second;
}

absl::string_view View(const Sha256Digest& digest) {
  return absl::string_view(digest.data(), digest.size());
}

// The api-key for a backend, from the agent host only. Returns an error naming the
// variable or file, never the value.
absl::StatusOr<std::string> ResolveApiKey(const v1::InstanceAuth& auth,
                                          const SnapshotOptions& options) {
  switch (auth.method_case()) {
    case v1::InstanceAuth::kApiKeyEnv: {
      const char* value = options.getenv(auth.api_key_env().c_str());
      if (value == nullptr || *value == '\0') {
        return absl::FailedPreconditionError(
            absl::StrCat("environment variable ", auth.api_key_env(), " is not set"));
      }
      return std::string(value);
    }
    case v1::InstanceAuth::kApiKeyFile: {
      return ReadSecretFile(auth.api_key_file(), options.secrets_dir);
    }
    case v1::InstanceAuth::kManagedIdentity:
    case v1::InstanceAuth::kClientCredentials:
      // Build takes these to EntraSourceFor instead.
      return absl::InvalidArgumentError("Microsoft Entra ID auth has no api-key");
    default:
      return absl::FailedPreconditionError("instance has no auth method");
  }
}

}  // namespace

absl::StatusOr<UpstreamAddress> ParseEndpoint(absl::string_view url) {
  UpstreamAddress address;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    address.tls = true;
  } else if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", url, "' must start with http:// or https://"));
  }
  absl::ConsumeSuffix(&rest, "/");
  if (rest.empty() || absl::StrContains(rest, "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", url, "' must be scheme://host[:port] with no path"));
  }
  address.host_header = std::string(rest);
  const std::size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && rest.front() != '[') {
    uint32_t port = 0;
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port == 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", url, "' has a bad port"));
    }
    address.host = std::string(rest.substr(0, colon));
    address.port = std::to_string(port);
  } else {
    address.host = std::string(rest);
    address.port = address.tls ? "443" : "80";
  }
  if (address.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint '", url, "' has no host"));
  }
  return address;
}

absl::StatusOr<RoutingSnapshotPtr> RoutingSnapshot::Build(v1::RoutingTable table,
                                                          BackendStateRegistry& states,
                                                          const SnapshotOptions& options) {
  std::shared_ptr<RoutingSnapshot> snapshot(new RoutingSnapshot());
  snapshot->table_ = std::move(table);
  const v1::RoutingTable& t = snapshot->table_;

  snapshot->backends_.reserve(static_cast<std::size_t>(t.backends_size()));
  for (const v1::Backend& config : t.backends()) {
    SnapshotBackend backend;
    backend.config = &config;
    absl::StatusOr<UpstreamAddress> address = ParseEndpoint(config.endpoint());
    if (!address.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend ", config.id(), ": ", address.status().message()));
    }
    backend.address = *std::move(address);
    // The compiler's validation refuses this too; an agent checks it again, since a table
    // from an older control plane (or a hand-made one) never went through that validation.
    if (!backend.address.tls && !config.insecure_http()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backend ", config.id(), ": endpoint '", config.endpoint(),
                       "' is http:// and its instance does not set insecure_http"));
    }
    backend.path_prefix = absl::StrCat("/openai/deployments/", config.deployment());
    if (config.auth().has_managed_identity() || config.auth().has_client_credentials()) {
      absl::StatusOr<std::shared_ptr<EntraTokenSource>> source =
          states.entra_lookup()
              ? states.entra_lookup()(config.auth())
              : absl::UnimplementedError(
                    "Microsoft Entra ID backend auth needs the agent's token service");
      if (source.ok()) {
        backend.entra_token = *std::move(source);
      } else {
        backend.unusable_reason = std::string(source.status().message());
      }
    } else if (absl::StatusOr<std::string> key = ResolveApiKey(config.auth(), options); key.ok()) {
      backend.api_key = *std::move(key);
    } else {
      backend.unusable_reason = std::string(key.status().message());
    }
    backend.local = config.region() == t.region();
    backend.window_capacity_tokens =
        static_cast<int64_t>(config.estimated_tokens_per_minute() * LoadWindow::kSlots / 60);
    backend.state = states.Get(config.id());
    snapshot->backend_by_id_.emplace(config.id(),
                                     static_cast<uint32_t>(snapshot->backends_.size()));
    snapshot->backends_.push_back(std::move(backend));
  }

  for (const v1::CompiledRoute& route : t.routes()) {
    SnapshotRoute compiled;
    compiled.name = route.name();
    compiled.locality =
        route.locality() == v1::LOCALITY_UNSPECIFIED ? v1::LOCALITY_PREFER_LOCAL : route.locality();
    compiled.first_byte_timeout = std::chrono::milliseconds(route.first_byte_timeout_ms());
    compiled.max_upload_bytes = route.max_upload_bytes();
    for (const v1::CompiledSplit& split : route.splits()) {
      SnapshotSplit s;
      s.percent = split.percent();
      for (const v1::CompiledTier& tier : split.tiers()) {
        SnapshotTier compiled_tier;
        compiled_tier.pool = tier.pool();
        compiled_tier.index = static_cast<uint32_t>(s.tiers.size());
        if (tier.priority_limits().has_standard()) {
          compiled_tier.standard_ceiling_percent = tier.priority_limits().standard();
        }
        if (tier.priority_limits().has_batch()) {
          compiled_tier.batch_ceiling_percent = tier.priority_limits().batch();
        }
        for (const v1::TierMember& member : tier.members()) {
          if (member.backend() >= snapshot->backends_.size()) {
            return absl::InvalidArgumentError(
                absl::StrCat("route ", route.name(), " names backend index ", member.backend(),
                             " but the table has ", snapshot->backends_.size(), " backends"));
          }
          if (std::find(compiled.backends.begin(), compiled.backends.end(), member.backend()) ==
              compiled.backends.end()) {
            compiled.backends.push_back(member.backend());
          }
          if (snapshot->backends_[member.backend()].config->has_drain()) {
            continue;  // no new requests; pinned calls reach it through `backends`
          }
          compiled_tier.members.push_back(
              SnapshotMember{member.backend(), member.weight() == 0 ? 1 : member.weight(),
                             snapshot->backends_[member.backend()].local});
        }
        s.tiers.push_back(std::move(compiled_tier));
      }
      compiled.splits.push_back(std::move(s));
    }
    if (!snapshot->routes_.emplace(route.name(), std::move(compiled)).second) {
      return absl::InvalidArgumentError(absl::StrCat("route ", route.name(), " appears twice"));
    }
  }

  // routes_ is complete: its elements no longer move.
  for (const auto& [name, route] : snapshot->routes_) {
    for (const uint32_t backend : route.backends) {
      snapshot->backends_[backend].routes.push_back(&route);  // route.backends has no repeats
    }
  }
  for (SnapshotBackend& backend : snapshot->backends_) {
    std::sort(backend.routes.begin(), backend.routes.end(),
              [](const SnapshotRoute* a, const SnapshotRoute* b) { return a->name < b->name; });
  }

  for (const v1::CompiledTenant& tenant : t.tenants()) {
    SnapshotTenant compiled;
    compiled.name = tenant.name();
    compiled.priority =
        tenant.priority() == v1::PRIORITY_UNSPECIFIED ? v1::PRIORITY_STANDARD : tenant.priority();
    compiled.routes.insert(tenant.routes().begin(), tenant.routes().end());
    compiled.limits = tenant.limits();
    const std::size_t index = snapshot->tenants_.size();
    snapshot->tenants_.push_back(std::move(compiled));
    for (const v1::ApiKey& key : tenant.api_keys()) {
      if (key.sha256().size() != 64 ||
          !std::all_of(key.sha256().begin(), key.sha256().end(), absl::ascii_isxdigit)) {
        return absl::InvalidArgumentError(
            absl::StrCat("tenant ", tenant.name(), " key ", key.name(), " is not a SHA-256 hex"));
      }
      snapshot->tenant_by_digest_.emplace(absl::HexStringToBytes(key.sha256()), index);
    }
  }
  return RoutingSnapshotPtr(std::move(snapshot));
}

std::optional<uint32_t> RoutingSnapshot::FindBackend(absl::string_view id) const {
  auto it = backend_by_id_.find(id);
  if (it == backend_by_id_.end()) {
    return std::nullopt;
  }
  return it->second;
}

const SnapshotRoute* RoutingSnapshot::FindRoute(absl::string_view name) const {
  auto it = routes_.find(name);
  return it == routes_.end() ? nullptr : &it->second;
}

const SnapshotTenant* RoutingSnapshot::FindTenantByKey(absl::string_view presented_key) const {
  const Sha256Digest& digest = ClientKeyDigest(presented_key);
  auto it = tenant_by_digest_.find(View(digest));
  // The hash lookup already decided; the constant-time compare keeps a timing side channel
  // from telling how many leading bytes of a guessed digest matched the stored one.
  if (it == tenant_by_digest_.end() ||
      CRYPTO_memcmp(it->first.data(), digest.data(), digest.size()) != 0) {
    return nullptr;
  }
  return &tenants_[it->second];
}

}  // namespace spillway
