// See object_routing.h.
#include "dataplane/server/object_routing.h"

#include "absl/strings/str_cat.h"
#include "common/wall_clock.h"

namespace spillway {
namespace {

ErrorReply NotFound(absl::string_view object_id, absl::string_view param) {
  return ErrorReply{
      404, "not_found",
      absl::StrCat(param.empty() ? "Object" : absl::StrCat("The ", param), " '",
                   object_id.substr(0, 100), "' is not known to this gateway for your key.")};
}

}  // namespace

std::optional<ErrorReply> RouteToOwner(const std::optional<PinOwner>& owner,
                                       absl::string_view object_id, absl::string_view param,
                                       const RoutingSnapshot& snapshot,
                                       const SnapshotTenant* tenant, ProxyRequest& request) {
  const absl::string_view tenant_name = tenant != nullptr ? absl::string_view(tenant->name) : "";
  if (!owner.has_value() || owner->tenant != tenant_name) {
    return NotFound(object_id, param);
  }
  std::optional<uint32_t> backend = snapshot.FindBackend(owner->backend_id);
  if (!backend.has_value()) {
    return ErrorReply{404, "not_found",
                      absl::StrCat("'", object_id.substr(0, 100), "' is held by backend '",
                                   owner->backend_id, "', which this gateway no longer serves.")};
  }
  // A route of the tenant's that reaches the owner: the route that created the object may have
  // been renamed since, and the tenant must still be allowed to reach that backend.
  const SnapshotRoute* route = nullptr;
  for (const SnapshotRoute* candidate : snapshot.backends()[*backend].routes) {
    if (tenant == nullptr || tenant->routes.contains(candidate->name)) {
      route = candidate;
      break;
    }
  }
  if (route == nullptr) {
    return ErrorReply{403, "403",
                      absl::StrCat("No route this key may use reaches backend '", owner->backend_id,
                                   "', which holds '", object_id.substr(0, 100), "'.")};
  }
  request.pinned = &snapshot.backends()[*backend];
  request.pinned_index = *backend;
  request.pinned_object = std::string(object_id);
  if (request.route == nullptr) {
    request.route = route;
  }
  return std::nullopt;
}

void UpdatePins(ObjectPins& pins, const ApiPath& path, absl::string_view method,
                const ProxyOutcome& outcome, const SnapshotTenant* tenant,
                std::chrono::seconds retention) {
  if (outcome.status != 200 || outcome.backend_id.empty()) {
    return;
  }
  if (!outcome.created_object_id.empty()) {
    PinOwner owner;
    owner.backend_id = outcome.backend_id;
    owner.tenant = tenant != nullptr ? tenant->name : "";
    owner.expires_unix_s = UnixMillisNow() / 1000 + retention.count();
    pins.Pin(outcome.created_object_id, owner);
  } else if (method == "DELETE" && path.operation->source == RouteSource::kObjectOwner &&
             !path.object_id.empty()) {
    // Only "responses/{id}" takes DELETE: the object itself is gone.
    pins.Unpin(path.object_id);
  }
}

}  // namespace spillway
