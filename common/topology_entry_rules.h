// The rules one topology entry obeys on its own, without looking at any other entry: name
// and endpoint syntax, credentials, ranges. topology_validate.cc adds the cross-references.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "spillway/v1/topology.pb.h"

namespace spillway::topology_rules {

// Why `name` is not a usable entry name, or nothing.
std::optional<std::string> NameProblem(absl::string_view name);

// Why `url` is not a usable instance endpoint, or nothing. http:// is usable only with the
// instance's explicit `insecure_http`, since the backend's key would travel in clear text.
std::optional<std::string> EndpointProblem(absl::string_view url, bool insecure_http);

// Whether `hash` is what an API key's sha256 must be: 64 lowercase hex characters.
bool IsLowerHexSha256(absl::string_view hash);

// Each function below returns its entry's problems in a fixed order, empty when there are none.

// An instance's auth block: exactly one usable method.
std::vector<std::string> AuthProblems(const v1::InstanceAuth& auth);

// A deployment's own fields: sku, model, version, capacity.
std::vector<std::string> DeploymentFieldProblems(const v1::Deployment& deployment);

// A pool's priority_limits: percentages, and batch shed no later than standard.
std::vector<std::string> PriorityLimitsProblems(const v1::PriorityLimits& limits);

// A route's own fields: the first-byte timeout.
std::vector<std::string> RouteFieldProblems(const v1::Route& route);

// A tenant's own fields: priority and rate limits.
std::vector<std::string> TenantFieldProblems(const v1::Tenant& tenant);

}  // namespace spillway::topology_rules
