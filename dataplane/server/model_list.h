// GET /openai/v1/models and /models/{id}, answered by the agent: the routes the caller's
// tenant may use, in the shape the OpenAI SDKs read (models.list, models.retrieve). Each route
// is a "model" a client names in its body; which deployments serve it is the gateway's affair.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/routing/routing_snapshot.h"

namespace spillway {

// The list's JSON, or for one model (`model` non-empty) its JSON; 404 in Azure's shape when
// the tenant may not use such a route (another tenant's routes are not revealed).
struct ModelListAnswer {
  std::optional<std::string> json;
  std::optional<ErrorReply> error;
};
ModelListAnswer AnswerModelList(const RoutingSnapshot& snapshot, const SnapshotTenant* tenant,
                                absl::string_view model);

// The first route of the table the tenant may use (every route with open access), or null:
// where an object created without naming a model (a conversation) is created.
const SnapshotRoute* DefaultRoute(const RoutingSnapshot& snapshot, const SnapshotTenant* tenant);

}  // namespace spillway
