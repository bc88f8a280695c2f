// See topology_entry_rules.h. Messages are worded to follow "<kind> '<name>': ", which the
// validator puts in front of each.
#include "common/topology_entry_rules.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace spillway::topology_rules {
namespace {

constexpr std::size_t kMaxNameLength = 64;
constexpr uint32_t kMaxCapacity = 100000;
constexpr uint64_t kMaxTokensPerMinute = 10'000'000'000ull;
constexpr uint64_t kMaxRequestsPerMinute = 100'000'000ull;
// Below a second no model answers; above an hour a hung backend holds a client too long.
constexpr uint32_t kMinFirstByteTimeoutMs = 1000;
constexpr uint64_t kMinUploadBytes = 1024;
constexpr uint64_t kMaxUploadBytes = uint64_t{4} << 30;
constexpr uint32_t kMaxFirstByteTimeoutMs = 3'600'000;

bool IsEnvVarName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name.front())) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') {
      return false;
    }
  }
  return true;
}

// Host names ('_' for container networks) and IPv4 addresses only: the agent does not parse
// bracketed IPv6 literals.
bool IsPlainHost(absl::string_view host) {
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

std::vector<std::string> ClientCredentialsProblems(const v1::ClientCredentials& cc) {
  std::vector<std::string> problems;
  if (cc.tenant_id().empty()) {
    problems.push_back("auth.client_credentials.tenant_id is not set");
  }
  if (cc.client_id().empty()) {
    problems.push_back("auth.client_credentials.client_id is not set");
  }
  if (cc.client_secret_env().empty() == cc.client_secret_file().empty()) {
    problems.push_back(
        "auth.client_credentials needs exactly one of client_secret_env and client_secret_file");
  }
  return problems;
}

}  // namespace

// Names end up in URLs, metric labels and log lines, so they are kept to a small alphabet.
std::optional<std::string> NameProblem(absl::string_view name) {
  if (name.empty()) {
    return "name is empty";
  }
  if (name.size() > kMaxNameLength) {
    return absl::StrCat("name is longer than ", kMaxNameLength, " characters");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return absl::StrCat("name '", name, "' may only contain letters, digits, '-', '_' and '.'");
    }
  }
  return std::nullopt;
}

// The agent splits endpoints into host and port and appends the API path itself
// (dataplane/routing/routing_snapshot.cc), so anything beyond scheme://host[:port][/] is
// refused.
std::optional<std::string> EndpointProblem(absl::string_view url, bool insecure_http) {
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "http://")) {
    if (!insecure_http) {
      return absl::StrCat("endpoint '", url,
                          "' is http://, which would send the api-key or token in clear text; "
                          "use https:// or set insecure_http: true on the instance");
    }
  } else if (!absl::ConsumePrefix(&rest, "https://")) {
    return absl::StrCat("endpoint '", url, "' must start with http:// or https://");
  }
  absl::ConsumeSuffix(&rest, "/");
  for (char c : rest) {
    if (c == '/' || c == '?' || c == '#' || c == '@' || absl::ascii_isspace(c)) {
      return absl::StrCat("endpoint '", url,
                          "' must be scheme://host[:port], without path, query or credentials");
    }
  }
  absl::string_view host = rest;
  absl::string_view port;
  bool has_port = false;
  if (const std::size_t colon = rest.rfind(':'); colon != absl::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    has_port = true;
  }
  if (host.empty()) {
    return absl::StrCat("endpoint '", url, "' has no host");
  }
  if (!IsPlainHost(host)) {
    return absl::StrCat("endpoint '", url, "' has a malformed host");
  }
  uint32_t port_number = 0;
  if (has_port &&
      (!absl::SimpleAtoi(port, &port_number) || port_number == 0 || port_number > 65535)) {
    return absl::StrCat("endpoint '", url, "' has a bad port");
  }
  return std::nullopt;
}

bool IsLowerHexSha256(absl::string_view hash) {
  if (hash.size() != 64) {
    return false;
  }
  for (char c : hash) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> AuthProblems(const v1::InstanceAuth& auth) {
  std::vector<std::string> problems;
  switch (auth.method_case()) {
    case v1::InstanceAuth::METHOD_NOT_SET:
      problems.push_back(
          "auth sets no method; give one of managed_identity, api_key_env, api_key_file, "
          "client_credentials");
      break;
    case v1::InstanceAuth::kManagedIdentity:
      if (!auth.managed_identity()) {
        problems.push_back("auth.managed_identity must be true when given");
      }
      break;
    case v1::InstanceAuth::kApiKeyEnv:
      if (!IsEnvVarName(auth.api_key_env())) {
        problems.push_back(absl::StrCat("auth.api_key_env '", auth.api_key_env(),
                                        "' is not an environment variable name"));
      }
      break;
    case v1::InstanceAuth::kApiKeyFile:
      if (auth.api_key_file().empty()) {
        problems.push_back("auth.api_key_file is empty");
      }
      break;
    case v1::InstanceAuth::kClientCredentials:
      problems = ClientCredentialsProblems(auth.client_credentials());
      break;
  }
  if (!auth.managed_identity_client_id().empty() &&
      auth.method_case() != v1::InstanceAuth::kManagedIdentity) {
    problems.push_back("auth.managed_identity_client_id is only used with managed_identity");
  }
  return problems;
}

std::vector<std::string> DeploymentFieldProblems(const v1::Deployment& deployment) {
  std::vector<std::string> problems;
  if (deployment.sku() == v1::SKU_UNSPECIFIED) {
    problems.push_back("sku is not set");
  } else if (!v1::Sku_IsValid(deployment.sku())) {
    problems.push_back(
        absl::StrCat("sku ", static_cast<int>(deployment.sku()), " is not a known value"));
  }
  if (deployment.model().empty()) {
    problems.push_back("model is not set");
  }
  if (deployment.version().empty()) {
    problems.push_back("version is not set");
  }
  if (deployment.capacity() < 1 || deployment.capacity() > kMaxCapacity) {
    problems.push_back(
        absl::StrCat("capacity ", deployment.capacity(), " is outside 1..", kMaxCapacity));
  }
  return problems;
}

std::vector<std::string> PriorityLimitsProblems(const v1::PriorityLimits& limits) {
  std::vector<std::string> problems;
  if (limits.has_standard() && (limits.standard() < 1 || limits.standard() > 100)) {
    problems.push_back(
        absl::StrCat("priority_limits.standard ", limits.standard(), " is outside 1..100"));
  }
  if (limits.has_batch() && (limits.batch() < 1 || limits.batch() > 100)) {
    problems.push_back(
        absl::StrCat("priority_limits.batch ", limits.batch(), " is outside 1..100"));
  }
  if (limits.has_standard() && limits.has_batch() && limits.batch() > limits.standard()) {
    problems.push_back(absl::StrCat("priority_limits.batch ", limits.batch(),
                                    " is above priority_limits.standard ", limits.standard(),
                                    "; batch traffic must be shed first"));
  }
  return problems;
}

std::vector<std::string> RouteFieldProblems(const v1::Route& route) {
  std::vector<std::string> problems;
  if (route.has_first_byte_timeout_ms() &&
      (route.first_byte_timeout_ms() < kMinFirstByteTimeoutMs ||
       route.first_byte_timeout_ms() > kMaxFirstByteTimeoutMs)) {
    problems.push_back(absl::StrCat("first_byte_timeout_ms ", route.first_byte_timeout_ms(),
                                    " is not within ", kMinFirstByteTimeoutMs, "..",
                                    kMaxFirstByteTimeoutMs));
  }
  if (route.has_max_upload_bytes() &&
      (route.max_upload_bytes() < kMinUploadBytes || route.max_upload_bytes() > kMaxUploadBytes)) {
    problems.push_back(absl::StrCat("max_upload_bytes ", route.max_upload_bytes(),
                                    " is not within ", kMinUploadBytes, "..", kMaxUploadBytes));
  }
  return problems;
}

std::vector<std::string> TenantFieldProblems(const v1::Tenant& tenant) {
  std::vector<std::string> problems;
  if (!v1::Priority_IsValid(tenant.priority())) {
    problems.push_back(
        absl::StrCat("priority ", static_cast<int>(tenant.priority()), " is not a known value"));
  }
  if (tenant.limits().tokens_per_minute() > kMaxTokensPerMinute) {
    problems.push_back(absl::StrCat("limits.tokens_per_minute ",
                                    tenant.limits().tokens_per_minute(), " is above ",
                                    kMaxTokensPerMinute));
  }
  if (tenant.limits().requests_per_minute() > kMaxRequestsPerMinute) {
    problems.push_back(absl::StrCat("limits.requests_per_minute ",
                                    tenant.limits().requests_per_minute(), " is above ",
                                    kMaxRequestsPerMinute));
  }
  return problems;
}

}  // namespace spillway::topology_rules
