// Stateful calls go to the backend that holds their object (docs/pinning.md): a request
// naming an object (a path id, previous_response_id) is sent to its pin's backend only, and a
// forwarded answer that created or deleted an object updates the pins.
#pragma once

#include <chrono>
#include <optional>

#include "absl/strings/string_view.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/routing/api_path.h"
#include "dataplane/routing/object_pins.h"
#include "dataplane/routing/routing_snapshot.h"

namespace spillway {

// Points `request` at `owner`, the pin of `object_id` (request.pinned; request.route, unless
// the body named one, becomes the first of the tenant's routes reaching it). Refused with 404
// when no pin is known, when another tenant created the object (ids must not reveal other
// tenants' objects) or when its backend left the routing table; 403 when no route the tenant
// may use reaches it. `param` names the body field the id came from ("" for the path).
std::optional<ErrorReply> RouteToOwner(const std::optional<PinOwner>& owner,
                                       absl::string_view object_id, absl::string_view param,
                                       const RoutingSnapshot& snapshot,
                                       const SnapshotTenant* tenant, ProxyRequest& request);

// After a forwarded request: pins the object a 200 answer created (for `retention`) and
// unpins the one a 200 DELETE removed.
void UpdatePins(ObjectPins& pins, const ApiPath& path, absl::string_view method,
                const ProxyOutcome& outcome, const SnapshotTenant* tenant,
                std::chrono::seconds retention);

}  // namespace spillway
