// Stateful calls go to the backend that holds their object (docs/pinning.md): a request
// naming an object (a path id, previous_response_id) is sent to its pin's backend only, and a
// forwarded answer that created or deleted an object updates the pins.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/routing/api_path.h"
#include "dataplane/routing/object_pins.h"
#include "dataplane/routing/routing_snapshot.h"

namespace spillway {

// Points `request` at `owner`, the pin of `object_id` (request.pinned; request.route, unless
// the body named one, becomes the first of the tenant's routes reaching it). Objects live on
// an Azure resource, not a deployment: when the body names a route the owner does not serve,
// the route's deployment on the owner's instance is used (400 if it has none). Refused with 404
// when no pin is known, when another tenant created the object (ids must not reveal other
// tenants' objects) or when its backend left the routing table; 403 when no route the tenant
// may use reaches it. `param` names the body field the id came from ("" for the path).
std::optional<ErrorReply> RouteToOwner(const std::optional<PinOwner>& owner,
                                       absl::string_view object_id, absl::string_view param,
                                       const RoutingSnapshot& snapshot,
                                       const SnapshotTenant* tenant, ProxyRequest& request);

// Every object of `refs` whose pin is known lives on `owner`'s instance (resource), where the
// request goes; else 400 naming both: Azure would not find the other there. `decided_by` (the
// id that chose the owner) is not checked again.
std::optional<ErrorReply> CheckObjectsTogether(const ObjectPins& pins,
                                               const std::vector<ObjectRef>& refs,
                                               absl::string_view decided_by,
                                               const RoutingSnapshot& snapshot,
                                               const SnapshotBackend& owner);

// For an object no pin places (created through another agent that has not told this one yet,
// or before pins were kept): `request` asks the backends that may hold it in turn
// (request.probe), and the one that does becomes its pin (UpdatePins). With no route chosen
// yet (an id in the path, or named by a request that names no model) those are the backends of
// every route the tenant may use; else those of request.route. 404 when there is none to ask.
// `param` names the body field the id came from ("" for the path).
std::optional<ErrorReply> ProbeForOwner(absl::string_view object_id, absl::string_view param,
                                        const RoutingSnapshot& snapshot,
                                        const SnapshotTenant* tenant, ProxyRequest& request);

// After a forwarded request: pins the object a 200 answer created (for `retention`) or a probe
// found, and marks the one a 200 DELETE removed as deleted (kDeletedObjectOwner).
void UpdatePins(ObjectPins& pins, const ApiPath& path, absl::string_view method,
                const ProxyRequest& request, const ProxyOutcome& outcome,
                const SnapshotTenant* tenant, std::chrono::seconds retention);

}  // namespace spillway
