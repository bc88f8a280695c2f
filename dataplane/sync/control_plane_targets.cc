// See control_plane_targets.h.
#include "dataplane/sync/control_plane_targets.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spillway {

absl::StatusOr<std::vector<std::string>> ParseControlPlaneTargets(absl::string_view list) {
  std::vector<std::string> targets;
  absl::flat_hash_set<absl::string_view> seen;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--control-plane '", list, "': an empty address (give HOST:PORT[,HOST:PORT...])"));
    }
    if (!seen.insert(entry).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--control-plane '", list, "': ", entry, " is given twice"));
    }
    if (targets.size() == kMaxControlPlaneTargets) {
      return absl::InvalidArgumentError(absl::StrCat("--control-plane '", list, "': more than ",
                                                     kMaxControlPlaneTargets, " addresses"));
    }
    targets.emplace_back(entry);
  }
  return targets;
}

TargetRotation::TargetRotation(std::vector<std::string> targets, std::size_t start)
    : targets_(std::move(targets)), index_(targets_.empty() ? 0 : start % targets_.size()) {
  if (targets_.empty()) {
    targets_.emplace_back();  // current() stays valid; the stream to "" fails and is retried
  }
}

}  // namespace spillway
