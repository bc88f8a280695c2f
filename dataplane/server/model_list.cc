// See model_list.h. Routes are listed in the table's order, which is the topology's.
#include "dataplane/server/model_list.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

namespace json = boost::json;

bool TenantMayUse(const SnapshotTenant* tenant, const std::string& route) {
  return tenant == nullptr || tenant->routes.contains(route);
}

json::object ModelObject(const std::string& route) {
  // "created" is not known for a route; 0 as services that do not track it answer.
  return json::object{{"id", route}, {"object", "model"}, {"created", 0}, {"owned_by", "system"}};
}

}  // namespace

ModelListAnswer AnswerModelList(const RoutingSnapshot& snapshot, const SnapshotTenant* tenant,
                                absl::string_view model) {
  ModelListAnswer answer;
  if (!model.empty()) {
    const SnapshotRoute* route = snapshot.FindRoute(model);
    if (route == nullptr || !TenantMayUse(tenant, route->name)) {
      answer.error = ErrorReply{404, "model_not_found",
                                absl::StrCat("The model '", model.substr(0, 200),
                                             "' does not exist or you do not have access to it.")};
      return answer;
    }
    answer.json = json::serialize(ModelObject(route->name));
    return answer;
  }
  json::array data;
  for (const v1::CompiledRoute& route : snapshot.table().routes()) {
    if (TenantMayUse(tenant, route.name())) {
      data.push_back(ModelObject(route.name()));
    }
  }
  answer.json = json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
  return answer;
}

const SnapshotRoute* DefaultRoute(const RoutingSnapshot& snapshot, const SnapshotTenant* tenant) {
  for (const v1::CompiledRoute& route : snapshot.table().routes()) {
    if (TenantMayUse(tenant, route.name())) {
      return snapshot.FindRoute(route.name());
    }
  }
  return nullptr;
}

}  // namespace spillway
