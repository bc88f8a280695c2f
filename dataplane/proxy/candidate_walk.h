// The steps of walking a route's candidates that Proxy::Forward (one HTTP request) and
// RealtimeProxy (one WebSocket session) share: admission, addressing a backend, the circuit's
// bookkeeping after each try, and the one error that says why nothing answered. Defined in
// proxy.cc, next to Forward, which reads them top to bottom.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <string>

#include "dataplane/http/upstream_request.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/proxy/upstream_attempt.h"

namespace spillway {

// Why the candidates tried so far were passed over or failed: what the final error says.
struct Tally {
  SteadyTime soonest = SteadyTime::max();  // when a passed-over backend may be tried again
  bool saw_throttle = false;
  bool saw_timeout = false;
  bool saw_failure = false;
  bool headroom_refused = false;
  bool passed_over = false;  // a candidate was skipped: its circuit was open or throttled
  unsigned not_here = 0;     // a probe's "no such object" status (404 or 400), 0 if none
  bool final = false;        // the last attempt may have been processed: no other candidate
  std::string last_error;
};

// Whether `backend` may be tried in this pass; if not, notes when it may be.
bool Admitted(const SnapshotBackend& backend, const PlannedCandidate& candidate,
              v1::Priority priority, int64_t estimated_tokens, SteadyTime now, Tally& tally);

// Sets the upstream request's target, Host and credentials for `backend`. False when the
// backend's Entra ID token is not cached: the caller awaits it (AwaitAndAuthorize).
bool AddressTo(const SnapshotBackend& backend, const ProxyRequest& request, SteadyTime now,
               UpstreamRequest& upstream);

// Counts an attempt on `backend` (in flight, its load window) before it starts.
void BeginAttempt(const SnapshotBackend& backend, int64_t estimated_tokens, SteadyTime now,
                  ProxyOutcome& outcome);

// Tells the backend's circuit (and the observer) how the attempt went; true when the request
// is over: the answer went to the client, or the client left.
bool EndAttempt(const SnapshotBackend& backend, const AttemptResult& result,
                int64_t estimated_tokens, const ProxyOutcome& outcome, BackendObserver* observer,
                Tally& tally);

// Nothing answered: one Azure-shaped error that says why and when to come back (fills the
// outcome's status and error).
http::response<http::string_body> FinalReply(const Tally& tally, const ProxyRequest& request,
                                             SteadyTime deadline, ProxyOutcome& outcome);

}  // namespace spillway
