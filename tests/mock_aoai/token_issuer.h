// The mock's Microsoft Entra ID: the managed identity endpoints (Azure IMDS and the App
// Service / Container Apps IDENTITY_ENDPOINT) and the v2.0 client-credentials endpoint.
// Tokens are HMAC-signed with a per-process key and carry their own expiry, so the data
// plane checks a bearer token without any shared state or lock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/rate_limiter.h"

namespace spillway::mock {

// A service principal the client-credentials endpoint knows: `TENANT:CLIENT_ID:SECRET`
// (TENANT `*` matches any tenant; the secret is everything after the second colon).
struct EntraClientSpec {
  std::string tenant;
  std::string client_id;
  std::string secret;
};
absl::StatusOr<EntraClientSpec> ParseEntraClientSpec(absl::string_view spec);
// Comma-separated specs.
absl::StatusOr<std::vector<EntraClientSpec>> ParseEntraClientList(absl::string_view list);

struct EntraConfig {
  std::vector<EntraClientSpec> clients;
  // Client ids of user-assigned identities the "host" has; empty: any id is accepted. The
  // system-assigned identity (no client_id) always exists.
  std::vector<std::string> managed_identity_client_ids;
  // X-IDENTITY-HEADER value that /msi/token requires; empty: that endpoint is off (404).
  std::string identity_header;
  absl::Duration token_lifetime = absl::Seconds(3600);
  absl::Duration answer_delay = absl::ZeroDuration();  // before each token answer
};

enum class TokenEndpoint { kImds, kAppService, kClientCredentials };
enum class TokenGrant { kManagedIdentity, kAppServiceIdentity, kClientCredentials };
absl::string_view TokenGrantName(TokenGrant grant);

// What a token endpoint was sent.
struct TokenRequest {
  TokenEndpoint endpoint = TokenEndpoint::kImds;
  absl::string_view tenant;  // client credentials: the path's tenant segment
  absl::string_view query;   // after '?', still percent-encoded
  absl::string_view metadata_header;
  absl::string_view identity_header;
  absl::string_view content_type;
  absl::string_view body;
};

struct TokenAnswer {
  int status = 200;
  std::string body;  // JSON
  bool issued = false;
  TokenGrant grant = TokenGrant::kManagedIdentity;
};

// What a presented bearer token is, from the data plane's point of view.
enum class TokenVerdict { kValid, kExpired, kInvalid, kNotIssuedHere };

class TokenIssuer {
 public:
  TokenIssuer(EntraConfig config, Clock clock);

  TokenAnswer Handle(const TokenRequest& request) const;
  const EntraConfig& config() const { return config_; }
  // kNotIssuedHere for anything that does not look like one of this mock's tokens (an
  // api-key style bearer token); kInvalid for a forged or another process's token.
  TokenVerdict Check(absl::string_view token) const;

  // The token text, exposed for unit tests.
  std::string Mint(TokenGrant grant, absl::Time expires) const;

 private:
  TokenAnswer Imds(const TokenRequest& request) const;
  TokenAnswer AppService(const TokenRequest& request) const;
  TokenAnswer ClientCredentials(const TokenRequest& request) const;

  const EntraConfig config_;
  const Clock clock_;
  std::string key_;  // HMAC key, random per process
};

}  // namespace spillway::mock
