// See realtime_handler.h. Shapes follow the Realtime API reference: client secrets answer
// {"value":"ek_...","expires_at":...,"session":{...}}; calls answer 201 with the SDP answer
// and a Location naming the call.
#include "tests/mock_aoai/realtime_handler.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

}  // namespace

void RealtimeHandler::Handle(const Route& route, ApiAnswer& answer) {
  const absl::string_view method = answer.request().method;
  if (route.realtime_path.empty()) {
    if (method != "GET" || !answer.request().websocket_upgrade) {
      answer.Fail(400, "", "BadRequest",
                  "The Realtime API is a WebSocket: GET with Upgrade: websocket.");
      return;
    }
    Upgrade(route, answer);
  } else if (method != "POST" || !route.v1) {
    answer.Fail(404, "", "404", "Resource not found");
  } else if (route.realtime_path == "/client_secrets") {
    ClientSecret(route, answer);
  } else {
    Call(route, answer);
  }
}

Deployment* RealtimeHandler::Admit(const Route& route, absl::string_view name, ApiAnswer& answer) {
  if (!answer.Authorize(name)) {
    return nullptr;
  }
  if (!route.v1 && !route.has_api_version) {
    answer.Fail(404, name, "404", "Resource not found");
    return nullptr;
  }
  if (name.empty()) {
    answer.Fail(400, "", "BadRequest", "The deployment (or model) is required.");
    return nullptr;
  }
  Deployment* deployment = state_.Find(name);
  if (deployment == nullptr) {
    answer.Fail(404, name, "DeploymentNotFound", kDeploymentNotFound);
  }
  return deployment;
}

void RealtimeHandler::Upgrade(const Route& route, ApiAnswer& answer) {
  // A browser's key comes in the query; the answer checks the view it was made with, so the
  // check runs on a copy that carries it as a header would.
  RequestView with_key = answer.request();
  if (with_key.api_key.empty()) {
    with_key.api_key = route.query_api_key;
  }
  ApiAnswer keyed(state_, with_key, answer.out(), answer.scratch(), answer.reply(),
                  answer.arrival());
  Deployment* deployment = Admit(route, route.query_deployment, keyed);
  if (deployment == nullptr) {
    return;
  }
  absl::string_view fault_name;
  if (keyed.TakeFault(*deployment, "Realtime", route.api_version, false, fault_name)) {
    return;  // a status (429 with retry-after, 503...), a reset or a hang answers the handshake
  }
  Reply& reply = keyed.reply();
  reply = Reply{};
  reply.kind = Reply::Kind::kWebSocket;
  reply.keep_alive = false;
  reply.deployment = deployment->spec.name;
  reply.realtime_model = deployment->spec.model;
  keyed.Record(deployment->spec.name, 101, false, fault_name);
}

void RealtimeHandler::ClientSecret(const Route& route, ApiAnswer& answer) {
  boost::system::error_code ec;
  json::value body = json::parse(
      json::string_view(answer.request().body.data(), answer.request().body.size()), ec);
  json::object* session = nullptr;
  if (!ec && body.is_object()) {
    if (json::value* s = body.get_object().if_contains("session"); s != nullptr && s->is_object()) {
      session = &s->get_object();
    }
  }
  absl::string_view model;
  if (session != nullptr) {
    if (const json::value* m = session->if_contains("model"); m != nullptr && m->is_string()) {
      model = absl::string_view(m->get_string().data(), m->get_string().size());
    }
  }
  Deployment* deployment = Admit(route, model, answer);
  if (deployment == nullptr) {
    return;
  }
  absl::string_view fault_name;
  if (answer.TakeFault(*deployment, "RealtimeClientSecrets", "v1", false, fault_name)) {
    return;
  }
  std::string value = "ek_";
  AppendRandomHex(value, 24);
  json::object result;
  result["value"] = value;
  result["expires_at"] = absl::ToUnixSeconds(absl::Now()) + 600;
  result["session"] = *session;
  answer.StartHead(200, nullptr);
  answer.FinishBody(kJson, json::serialize(result));
  answer.Record(deployment->spec.name, 200, false, fault_name);
}

void RealtimeHandler::Call(const Route& route, ApiAnswer& answer) {
  Deployment* deployment = Admit(route, route.query_deployment, answer);
  if (deployment == nullptr) {
    return;
  }
  absl::string_view fault_name;
  if (answer.TakeFault(*deployment, "RealtimeCalls", "v1", false, fault_name)) {
    return;
  }
  std::string id = "rtc_";
  AppendRandomHex(id, 24);
  answer.StartHead(201, nullptr);
  AppendHeader(answer.out(), "Location", absl::StrCat("/v1/realtime/calls/", id));
  // An answer to the offer: the mock has no media, only the shape.
  answer.FinishBody(
      "application/sdp",
      absl::StrCat("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=", deployment->spec.name,
                   "\r\nt=0 0\r\na=offer-bytes:", answer.request().body.size(), "\r\n"));
  answer.Record(deployment->spec.name, 201, false, fault_name);
}

}  // namespace spillway::mock
