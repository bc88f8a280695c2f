// See drain_names.h.
#include "common/drain_names.h"

#include "absl/strings/str_cat.h"

namespace spillway {

absl::string_view DrainScopeName(v1::DrainScope scope) {
  switch (scope) {
    case v1::DRAIN_SCOPE_REGION:
      return "region";
    case v1::DRAIN_SCOPE_INSTANCE:
      return "instance";
    case v1::DRAIN_SCOPE_DEPLOYMENT:
      return "deployment";
    default:
      return "";
  }
}

std::optional<v1::DrainScope> ParseDrainScope(absl::string_view word) {
  for (v1::DrainScope scope :
       {v1::DRAIN_SCOPE_REGION, v1::DRAIN_SCOPE_INSTANCE, v1::DRAIN_SCOPE_DEPLOYMENT}) {
    if (word == DrainScopeName(scope)) {
      return scope;
    }
  }
  return std::nullopt;
}

std::string DrainId(v1::DrainScope scope, absl::string_view name) {
  return absl::StrCat(DrainScopeName(scope), "/", name);
}

std::string DrainLabel(const v1::Drain& drain) {
  return absl::StrCat(DrainScopeName(drain.scope()), " ", drain.name());
}

}  // namespace spillway
