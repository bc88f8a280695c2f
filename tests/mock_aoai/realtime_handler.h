// The mock's Realtime API, as Azure serves it:
//   GET  /openai/v1/realtime?model=D           WebSocket (Upgrade) for deployment D; the
//   GET  /openai/realtime?api-version=V&deployment=D   preview path names it `deployment`
//   POST /openai/v1/realtime/client_secrets    {"session":{"model":D,...}} -> an ephemeral key
//   POST /openai/v1/realtime/calls?model=D     WebRTC SDP offer -> 201 with an SDP answer
// The key may be the api-key header, a Bearer token, or on the WebSocket the api-key query
// parameter. The handshake goes through auth, the deployment lookup and faults (a 429 fault
// answers the handshake with 429 and retry-after) before the session is accepted; the session
// itself is realtime_session.h's.
#pragma once

#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

class RealtimeHandler {
 public:
  explicit RealtimeHandler(MockState& state) : state_(state) {}

  // A request routed as Route::Kind::kRealtime. An accepted WebSocket leaves the reply
  // Reply::Kind::kWebSocket for the session to carry out.
  void Handle(const Route& route, ApiAnswer& answer);

 private:
  // Auth, api-version and the deployment; null when the request was answered (refused).
  Deployment* Admit(const Route& route, absl::string_view name, ApiAnswer& answer);
  void Upgrade(const Route& route, ApiAnswer& answer);
  void ClientSecret(const Route& route, ApiAnswer& answer);
  void Call(const Route& route, ApiAnswer& answer);

  MockState& state_;
};

}  // namespace spillway::mock
