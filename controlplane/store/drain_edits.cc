// See drain_edits.h.
#include "controlplane/store/drain_edits.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/drain_names.h"

namespace spillway {
namespace {

int FindDrain(const v1::Topology& topology, v1::DrainScope scope, const std::string& name) {
  for (int i = 0; i < topology.drains_size(); ++i) {
    if (topology.drains(i).scope() == scope && topology.drains(i).name() == name) {
      return i;
    }
  }
  return -1;
}

}  // namespace

void KeepDrains(const v1::Topology& current, v1::Topology& desired) {
  if (current.drains().empty() || !desired.drains().empty()) {
    return;
  }
  absl::flat_hash_set<std::string> targets;
  for (const v1::Region& region : desired.regions()) {
    targets.insert(DrainId(v1::DRAIN_SCOPE_REGION, region.name()));
  }
  for (const v1::Instance& instance : desired.instances()) {
    targets.insert(DrainId(v1::DRAIN_SCOPE_INSTANCE, instance.name()));
  }
  for (const v1::Deployment& deployment : desired.deployments()) {
    targets.insert(DrainId(v1::DRAIN_SCOPE_DEPLOYMENT,
                           absl::StrCat(deployment.instance(), "/", deployment.name())));
  }
  for (const v1::Drain& drain : current.drains()) {
    if (targets.contains(DrainId(drain))) {
      *desired.add_drains() = drain;
    }
  }
}

absl::Status AddDrain(const v1::DrainRequest& request, absl::Time now, v1::Topology& topology) {
  if (DrainScopeName(request.scope()).empty()) {
    return absl::InvalidArgumentError("drain: the scope must be region, instance or deployment");
  }
  v1::Drain drain;
  drain.set_scope(request.scope());
  drain.set_name(request.name());
  drain.set_reason(request.reason());
  drain.set_keep_pinned(request.keep_pinned());
  drain.set_since(absl::FormatTime(absl::RFC3339_sec, now, absl::UTCTimeZone()));
  if (const int index = FindDrain(topology, request.scope(), request.name()); index >= 0) {
    // Draining again changes the reason or the pinned rule, not when it began.
    drain.set_since(topology.drains(index).since());
    *topology.mutable_drains(index) = std::move(drain);
  } else {
    *topology.add_drains() = std::move(drain);
  }
  return absl::OkStatus();  // the whole topology is validated next: an unknown name fails there
}

absl::Status RemoveDrain(v1::DrainScope scope, const std::string& name, v1::Topology& topology) {
  const int index = FindDrain(topology, scope, name);
  if (index < 0) {
    return absl::NotFoundError(absl::StrCat(DrainScopeName(scope), " '", name, "' is not drained"));
  }
  topology.mutable_drains()->erase(topology.mutable_drains()->begin() + index);
  return absl::OkStatus();
}

}  // namespace spillway
