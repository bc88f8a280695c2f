// See object_routing.h.
#include "dataplane/server/object_routing.h"

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/wall_clock.h"

namespace spillway {
namespace {

// A probe asks at most this many backends: an unknown id must not fan out across a whole fleet.
constexpr std::size_t kMaxProbeCandidates = 16;

// A drained backend's objects answer 503 unless the drain keeps them: asking it whether it
// holds one would send it the request.
bool ClosedToPinned(const SnapshotBackend& backend) {
  return backend.config->has_drain() && !backend.config->drain().keep_pinned();
}

void AddRouteBackends(const SnapshotRoute& route, const RoutingSnapshot& snapshot,
                      ProxyRequest& request) {
  for (const uint32_t backend : route.backends) {
    if (ClosedToPinned(snapshot.backends()[backend])) {
      continue;
    }
    if (request.probe.size() < kMaxProbeCandidates &&
        absl::c_find(request.probe, backend) == request.probe.end()) {
      request.probe.push_back(backend);
    }
  }
}

ErrorReply NotFound(absl::string_view object_id, absl::string_view param) {
  return ErrorReply{
      404, "not_found",
      absl::StrCat(param.empty() ? "Object" : absl::StrCat("The ", param), " '",
                   object_id.substr(0, 100), "' is not known to this gateway for your key.")};
}

// The route's member on `instance`: the backend itself when it is one, else the first
// deployment of that instance in the route.
std::optional<uint32_t> MemberOnInstance(const SnapshotRoute& route,
                                         const RoutingSnapshot& snapshot,
                                         absl::string_view instance) {
  for (const uint32_t backend : route.backends) {
    if (snapshot.backends()[backend].config->instance() == instance) {
      return backend;
    }
  }
  return std::nullopt;
}

// Whether a DELETE on `operation` deletes the object itself ("responses/*"), not one of its
// items ("conversations/*/items/*").
bool DeletesTheObject(const ApiOperation& operation) {
  return absl::EndsWith(operation.path, "/*") &&
         operation.path.find('*') == operation.path.size() - 1;
}

// "drained: region eastus2, maintenance" for messages.
std::string DrainText(const v1::Backend& backend) {
  return absl::StrCat("drained: ", backend.drain().drained(),
                      backend.drain().reason().empty() ? "" : ", ", backend.drain().reason());
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
  if (owner->backend_id == kDeletedObjectOwner) {
    return ErrorReply{404, "not_found",
                      absl::StrCat("'", object_id.substr(0, 100), "' was deleted.")};
  }
  std::optional<uint32_t> backend = snapshot.FindBackend(owner->backend_id);
  if (!backend.has_value()) {
    return ErrorReply{404, "not_found",
                      absl::StrCat("'", object_id.substr(0, 100), "' is held by backend '",
                                   owner->backend_id, "', which this gateway no longer serves.")};
  }
  if (request.route != nullptr) {
    // The body named the route (a follow-up may change models): its deployment on the
    // owner's resource, where the object lives.
    std::optional<uint32_t> on_owner = MemberOnInstance(
        *request.route, snapshot, snapshot.backends()[*backend].config->instance());
    if (!on_owner.has_value()) {
      return ErrorReply{400, "invalid_request_error",
                        absl::StrCat("Route '", request.route->name, "' has no deployment on '",
                                     snapshot.backends()[*backend].config->instance(),
                                     "', which holds '", object_id.substr(0, 100), "'.")};
    }
    backend = on_owner;
  }
  if (const v1::Backend& config = *snapshot.backends()[*backend].config;
      ClosedToPinned(snapshot.backends()[*backend])) {
    return ErrorReply{503, "BackendDrained",
                      absl::StrCat("'", object_id.substr(0, 100), "' is held by backend '",
                                   config.id(), "', which is out of service (", DrainText(config),
                                   "). Try again once it is back.")};
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

std::optional<ErrorReply> CheckObjectsTogether(const ObjectPins& pins,
                                               const std::vector<ObjectRef>& refs,
                                               absl::string_view decided_by,
                                               const RoutingSnapshot& snapshot,
                                               const SnapshotBackend& owner) {
  const std::string& instance = owner.config->instance();
  for (const ObjectRef& ref : refs) {
    if (ref.id == decided_by) {
      continue;
    }
    const std::optional<PinOwner> pin = pins.Find(ref.id);
    if (!pin.has_value() || pin->backend_id == kDeletedObjectOwner) {
      continue;  // unknown here: the owner says whether it has it
    }
    const std::optional<uint32_t> backend = snapshot.FindBackend(pin->backend_id);
    if (backend.has_value() && snapshot.backends()[*backend].config->instance() != instance) {
      return ErrorReply{
          400, "invalid_request_error",
          absl::StrCat("'", decided_by.substr(0, 100), "' lives on '", instance, "' but ",
                       ref.field, " '", ref.id.substr(0, 100), "' lives on '",
                       snapshot.backends()[*backend].config->instance(),
                       "': objects used together must be created on one resource.")};
    }
  }
  return std::nullopt;
}

std::optional<ErrorReply> ProbeForOwner(absl::string_view object_id, absl::string_view param,
                                        const RoutingSnapshot& snapshot,
                                        const SnapshotTenant* tenant, ProxyRequest& request) {
  request.probe_param = param;
  if (request.route == nullptr) {
    const std::vector<SnapshotBackend>& backends = snapshot.backends();
    for (uint32_t index = 0; index < backends.size(); ++index) {
      if (ClosedToPinned(backends[index])) {
        continue;
      }
      for (const SnapshotRoute* route : backends[index].routes) {
        if (tenant == nullptr || tenant->routes.contains(route->name)) {
          if (request.route == nullptr) {
            request.route = route;  // its timeouts and its name in the log
          }
          if (request.probe.size() < kMaxProbeCandidates) {
            request.probe.push_back(index);
          }
          break;
        }
      }
    }
  } else {
    AddRouteBackends(*request.route, snapshot, request);
  }
  if (request.probe.empty()) {
    return NotFound(object_id, param);
  }
  request.pinned_object = std::string(object_id);
  return std::nullopt;
}

void UpdatePins(ObjectPins& pins, const ApiPath& path, absl::string_view method,
                const ProxyRequest& request, const ProxyOutcome& outcome,
                const SnapshotTenant* tenant, std::chrono::seconds retention) {
  if (outcome.status != 200 || outcome.backend_id.empty()) {
    return;
  }
  const bool deleted = method == "DELETE" && path.operation->source == RouteSource::kObjectOwner &&
                       DeletesTheObject(*path.operation) && !path.object_id.empty();
  if (!deleted && request.probe.empty() && outcome.created_object_id.empty()) {
    return;  // nothing to pin (most requests): no owner built, no clock read
  }
  PinOwner owner;
  owner.backend_id = outcome.backend_id;
  owner.tenant = tenant != nullptr ? tenant->name : "";
  owner.expires_unix_s = UnixMillisNow() / 1000 + retention.count();
  if (deleted) {
    // The object itself is gone (not one of its items), here and (through the
    // listener) on the region's other agents.
    owner.backend_id = std::string(kDeletedObjectOwner);
    pins.Pin(path.object_id, owner);
    return;
  }
  if (!request.probe.empty()) {
    // Found by asking: the tenant that asked stands for the creator (docs/pinning.md).
    pins.Pin(request.pinned_object, owner);
  }
  if (!outcome.created_object_id.empty()) {
    pins.Pin(outcome.created_object_id, owner);
  }
}

}  // namespace spillway
