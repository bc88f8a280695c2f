// How drains (operator-declared outages, spillwayctl drain) are named in the store, in
// problems, in logs and in the agents' replies: one spelling everywhere.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// "region", "instance", "deployment"; "" for an unspecified scope.
absl::string_view DrainScopeName(v1::DrainScope scope);
// The inverse of DrainScopeName; nullopt for any other word.
std::optional<v1::DrainScope> ParseDrainScope(absl::string_view word);

// The drain's key in the topology: "<scope>/<name>", e.g. "region/eastus2".
std::string DrainId(v1::DrainScope scope, absl::string_view name);
inline std::string DrainId(const v1::Drain& drain) { return DrainId(drain.scope(), drain.name()); }

// What the drain covers, in words: "region eastus2", "deployment aoai-a/gpt-4o".
std::string DrainLabel(const v1::Drain& drain);

}  // namespace spillway
