// See token_issuer.h. Error bodies follow Microsoft Entra ID's shapes (AADSTS codes for the
// v2.0 endpoint, IMDS's {"error","error_description"}), so the agent is tested against what
// it meets in Azure.
#include "tests/mock_aoai/token_issuer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/mock_aoai/config.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

constexpr absl::string_view kTokenPrefix = "mock-entra.";
constexpr absl::string_view kResource = "https://cognitiveservices.azure.com";
constexpr absl::string_view kScope = "https://cognitiveservices.azure.com/.default";
// What IMDS reports as the client id of the system-assigned identity.
constexpr absl::string_view kSystemAssignedClientId = "00000000-0000-0000-0000-5y5t3m000001";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded and query decoding: %XX and '+' for space.
std::string PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The decoded value of `key` in a query string or form body; nullopt when absent.
std::optional<std::string> FormValue(absl::string_view form, absl::string_view key) {
  for (absl::string_view pair : absl::StrSplit(form, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq)) == key) {
      return eq == absl::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    }
  }
  return std::nullopt;
}

bool IsCognitiveServices(absl::string_view resource) {
  absl::ConsumeSuffix(&resource, "/");
  return resource == kResource;
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  return Hex(raw);
}

// IMDS and App Service errors: {"error": ..., "error_description": ...}.
TokenAnswer SimpleError(int status, absl::string_view error, absl::string_view description) {
  json::object body;
  body["error"] = json::string_view(error.data(), error.size());
  body["error_description"] = json::string_view(description.data(), description.size());
  return TokenAnswer{status, json::serialize(body)};
}

// The v2.0 endpoint's errors carry the AADSTS code in the description and in error_codes.
TokenAnswer AadstsError(int status, absl::string_view error, int code,
                        absl::string_view description, absl::Time now) {
  json::object body;
  body["error"] = json::string_view(error.data(), error.size());
  const std::string timestamp = absl::FormatTime("%Y-%m-%d %H:%M:%SZ", now, absl::UTCTimeZone());
  const std::string trace_id = RandomHex(16);
  const std::string correlation_id = RandomHex(16);
  // Entra puts the ids on their own lines after the message.
  body["error_description"] =
      absl::StrCat("AADSTS", code, ": ", description, "\r\nTrace ID: ", trace_id,
                   "\r\nCorrelation ID: ", correlation_id, "\r\nTimestamp: ", timestamp);
  body["error_codes"] = json::array{code};
  body["timestamp"] = timestamp;
  body["trace_id"] = trace_id;
  body["correlation_id"] = correlation_id;
  body["error_uri"] = absl::StrCat("https://login.microsoftonline.com/error?code=", code);
  return TokenAnswer{status, json::serialize(body)};
}

}  // namespace

absl::string_view TokenGrantName(TokenGrant grant) {
  switch (grant) {
    case TokenGrant::kManagedIdentity:
      return "managed_identity";
    case TokenGrant::kAppServiceIdentity:
      return "app_service_identity";
    case TokenGrant::kClientCredentials:
      return "client_credentials";
  }
  return "unknown";
}

absl::StatusOr<EntraClientSpec> ParseEntraClientSpec(absl::string_view spec) {
  std::vector<absl::string_view> parts = absl::StrSplit(spec, absl::MaxSplits(':', 2));
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
    // The spec holds a secret: name the shape, never echo the text.
    return absl::InvalidArgumentError(
        "an Entra client must be TENANT:CLIENT_ID:SECRET with none of them empty");
  }
  return EntraClientSpec{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
}

absl::StatusOr<std::vector<EntraClientSpec>> ParseEntraClientList(absl::string_view list) {
  std::vector<EntraClientSpec> clients;
  for (const std::string& item : SplitList(list)) {
    absl::StatusOr<EntraClientSpec> client = ParseEntraClientSpec(item);
    if (!client.ok()) return client.status();
    clients.push_back(*std::move(client));
  }
  return clients;
}

TokenIssuer::TokenIssuer(EntraConfig config, Clock clock)
    : config_(std::move(config)), clock_(std::move(clock)), key_(32, '\0') {
  RAND_bytes(reinterpret_cast<unsigned char*>(key_.data()), static_cast<int>(key_.size()));
}

// mock-entra.<grant>.<expiry unix ms>.<nonce>.<hex HMAC-SHA256 of everything before it>
std::string TokenIssuer::Mint(TokenGrant grant, absl::Time expires) const {
  std::string token = absl::StrCat(kTokenPrefix, static_cast<int>(grant), ".",
                                   absl::ToUnixMillis(expires), ".", RandomHex(12), ".");
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size() - 1, mac, &mac_size);
  absl::StrAppend(&token, Hex(absl::string_view(reinterpret_cast<const char*>(mac), mac_size)));
  return token;
}

TokenVerdict TokenIssuer::Check(absl::string_view token) const {
  if (!absl::StartsWith(token, kTokenPrefix)) {
    return TokenVerdict::kNotIssuedHere;
  }
  const size_t last_dot = token.rfind('.');
  const absl::string_view signed_part = token.substr(0, last_dot);
  const std::string presented = absl::HexStringToBytes(token.substr(last_dot + 1));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac,
       &mac_size);
  if (presented.size() != mac_size || CRYPTO_memcmp(presented.data(), mac, mac_size) != 0) {
    return TokenVerdict::kInvalid;
  }
  std::vector<absl::string_view> fields = absl::StrSplit(signed_part, '.');
  int64_t expires_ms = 0;
  if (fields.size() != 4 || !absl::SimpleAtoi(fields[2], &expires_ms)) {
    return TokenVerdict::kInvalid;
  }
  return absl::ToUnixMillis(clock_()) < expires_ms ? TokenVerdict::kValid : TokenVerdict::kExpired;
}

TokenAnswer TokenIssuer::Handle(const TokenRequest& request) const {
  switch (request.endpoint) {
    case TokenEndpoint::kImds:
      return Imds(request);
    case TokenEndpoint::kAppService:
      return AppService(request);
    case TokenEndpoint::kClientCredentials:
      return ClientCredentials(request);
  }
  return SimpleError(404, "not_found", "no such token endpoint");
}

// GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...[&client_id=...]
TokenAnswer TokenIssuer::Imds(const TokenRequest& request) const {
  if (!absl::EqualsIgnoreCase(request.metadata_header, "true")) {
    return SimpleError(400, "invalid_request", "Required metadata header not specified");
  }
  if (!FormValue(request.query, "api-version").has_value()) {
    return SimpleError(400, "invalid_request", "Required query variable 'api-version' is missing");
  }
  const std::optional<std::string> resource = FormValue(request.query, "resource");
  if (!resource.has_value() || resource->empty()) {
    return SimpleError(400, "invalid_request", "Required query variable 'resource' is missing");
  }
  if (!IsCognitiveServices(*resource)) {
    return SimpleError(400, "invalid_resource",
                       absl::StrCat("AADSTS500011: The resource principal named ", *resource,
                                    " was not found in the tenant."));
  }
  const std::string client_id = FormValue(request.query, "client_id").value_or("");
  const std::vector<std::string>& known = config_.managed_identity_client_ids;
  if (!client_id.empty() && !known.empty() &&
      std::find(known.begin(), known.end(), client_id) == known.end()) {
    return SimpleError(400, "invalid_request", "Identity not found");
  }
  const absl::Time now = clock_();
  const absl::Time expires = now + config_.token_lifetime;
  const std::string lifetime = absl::StrCat(absl::ToInt64Seconds(config_.token_lifetime));
  json::object body;
  body["access_token"] = Mint(TokenGrant::kManagedIdentity, expires);
  body["client_id"] = client_id.empty() ? std::string(kSystemAssignedClientId) : client_id;
  // IMDS sends every number as a string.
  body["expires_in"] = lifetime;
  body["expires_on"] = absl::StrCat(absl::ToUnixSeconds(expires));
  body["ext_expires_in"] = lifetime;
  body["not_before"] = absl::StrCat(absl::ToUnixSeconds(now));
  body["resource"] = *resource;
  body["token_type"] = "Bearer";
  return TokenAnswer{200, json::serialize(body), true, TokenGrant::kManagedIdentity};
}

// App Service / Container Apps: GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...
// with X-IDENTITY-HEADER; the answer has expires_on (unix seconds) but no expires_in.
TokenAnswer TokenIssuer::AppService(const TokenRequest& request) const {
  if (config_.identity_header.empty()) {
    return SimpleError(404, "not_found", "No managed identity endpoint is configured");
  }
  if (request.identity_header.empty() ||
      request.identity_header.size() != config_.identity_header.size() ||
      CRYPTO_memcmp(request.identity_header.data(), config_.identity_header.data(),
                    config_.identity_header.size()) != 0) {
    return SimpleError(401, "unauthorized", "X-IDENTITY-HEADER is missing or wrong");
  }
  if (FormValue(request.query, "api-version") != "2019-08-01") {
    return SimpleError(400, "invalid_request", "api-version must be 2019-08-01");
  }
  const std::optional<std::string> resource = FormValue(request.query, "resource");
  if (!resource.has_value() || !IsCognitiveServices(*resource)) {
    return SimpleError(400, "invalid_resource",
                       absl::StrCat("AADSTS500011: The resource principal named ",
                                    resource.value_or(""), " was not found in the tenant."));
  }
  const absl::Time expires = clock_() + config_.token_lifetime;
  json::object body;
  body["access_token"] = Mint(TokenGrant::kAppServiceIdentity, expires);
  body["expires_on"] = absl::StrCat(absl::ToUnixSeconds(expires));
  body["resource"] = *resource;
  body["token_type"] = "Bearer";
  body["client_id"] =
      FormValue(request.query, "client_id").value_or(std::string(kSystemAssignedClientId));
  return TokenAnswer{200, json::serialize(body), true, TokenGrant::kAppServiceIdentity};
}

// POST /{tenant}/oauth2/v2.0/token, form body grant_type, client_id, client_secret, scope.
TokenAnswer TokenIssuer::ClientCredentials(const TokenRequest& request) const {
  const absl::Time now = clock_();
  // A body that is not a form reads as one without parameters, as Entra ID treats it.
  const absl::string_view form =
      absl::StartsWithIgnoreCase(request.content_type, "application/x-www-form-urlencoded")
          ? request.body
          : absl::string_view();
  auto missing = [&](absl::string_view parameter) {
    return AadstsError(
        400, "invalid_request", 900144,
        absl::StrCat("The request body must contain the following parameter: '", parameter, "'."),
        now);
  };
  const std::optional<std::string> grant_type = FormValue(form, "grant_type");
  if (!grant_type.has_value()) return missing("grant_type");
  if (*grant_type != "client_credentials") {
    return AadstsError(400, "unsupported_grant_type", 70003,
                       "The app requested an unsupported grant type.", now);
  }
  const std::optional<std::string> client_id = FormValue(form, "client_id");
  if (!client_id.has_value() || client_id->empty()) return missing("client_id");
  const std::optional<std::string> scope = FormValue(form, "scope");
  if (!scope.has_value() || scope->empty()) return missing("scope");
  if (!absl::EndsWith(*scope, "/.default")) {
    return AadstsError(400, "invalid_scope", 1002012,
                       absl::StrCat("The provided value for scope ", *scope,
                                    " is not valid. Client credential flows must have a scope "
                                    "value with /.default suffixed to the resource identifier "
                                    "(application ID URI)."),
                       now);
  }
  if (*scope != kScope) {
    return AadstsError(400, "invalid_resource", 500011,
                       absl::StrCat("The resource principal named ",
                                    absl::string_view(*scope).substr(0, scope->size() - 9),
                                    " was not found in the tenant."),
                       now);
  }
  const std::string tenant = PercentDecode(request.tenant);
  bool tenant_known = false;
  const EntraClientSpec* client = nullptr;
  for (const EntraClientSpec& spec : config_.clients) {
    if (spec.tenant == "*" || spec.tenant == tenant) {
      tenant_known = true;
      if (spec.client_id == *client_id) {
        client = &spec;
        break;
      }
    }
  }
  if (!tenant_known) {
    return AadstsError(400, "invalid_request", 90002,
                       absl::StrCat("Tenant '", tenant, "' not found."), now);
  }
  if (client == nullptr) {
    return AadstsError(400, "unauthorized_client", 700016,
                       absl::StrCat("Application with identifier '", *client_id,
                                    "' was not found in the directory '", tenant, "'."),
                       now);
  }
  const std::optional<std::string> secret = FormValue(form, "client_secret");
  if (!secret.has_value() || secret->empty()) return missing("client_assertion' or 'client_secret");
  if (secret->size() != client->secret.size() ||
      CRYPTO_memcmp(secret->data(), client->secret.data(), secret->size()) != 0) {
    return AadstsError(401, "invalid_client", 7000215,
                       absl::StrCat("Invalid client secret provided. Ensure the secret being "
                                    "sent in the request is the client secret value, not the "
                                    "client secret ID, for a secret added to app '",
                                    client->client_id, "'."),
                       now);
  }
  const int64_t lifetime = absl::ToInt64Seconds(config_.token_lifetime);
  json::object body;
  body["token_type"] = "Bearer";
  // The v2.0 endpoint sends numbers as numbers.
  body["expires_in"] = lifetime;
  body["ext_expires_in"] = lifetime;
  body["access_token"] = Mint(TokenGrant::kClientCredentials, now + config_.token_lifetime);
  return TokenAnswer{200, json::serialize(body), true, TokenGrant::kClientCredentials};
}

}  // namespace spillway::mock
