// The agent's Microsoft Entra ID token service: one EntraTokenSource per distinct credential
// (backends sharing an identity share its token), kept for the life of the process so a new
// routing table finds each credential's token already cached, like BackendState. Fetches
// run on one dedicated token thread with its own io_context: token I/O and the refresh
// timers never touch the request threads, and reading a client-secret file there blocks
// nobody.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/auth/entra_token_fetch.h"
#include "dataplane/auth/entra_token_source.h"
#include "dataplane/upstream/upstream_pool.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

struct EntraOptions {
  EntraEndpoints endpoints;  // identity_endpoint/header are read from the environment
  std::string ca_file;       // --upstream-ca-file; empty: the system's trust store
  std::chrono::milliseconds timeout{10000};  // one token request, connect included
  std::function<const char*(const char*)> getenv = ::getenv;
  std::string secrets_dir;  // --secrets-dir: client_secret_file must resolve inside it
};

// The Entra ID credential an instance's auth names; nullopt for api-key auth. Errors name
// the missing field.
absl::StatusOr<std::optional<EntraCredential>> EntraCredentialOf(const v1::InstanceAuth& auth);

class EntraTokenRegistry {
 public:
  // Loads the CA bundle, reads IDENTITY_ENDPOINT/IDENTITY_HEADER and starts the token thread.
  static absl::StatusOr<std::unique_ptr<EntraTokenRegistry>> Start(EntraOptions options);
  // Stops the token thread; call it before the I/O threads' io_contexts go away, since a
  // fetch that completes wakes its waiters there. Idempotent; the destructor calls it.
  void Stop();
  ~EntraTokenRegistry();

  // The shared source for `credential`, created with its first fetch under way. A client
  // secret that cannot be read now is an error (the backend is unusable, like a missing
  // api-key); it is read again for every fetch, so a rotated secret file is picked up.
  absl::StatusOr<std::shared_ptr<EntraTokenSource>> SourceFor(const EntraCredential& credential);

 private:
  explicit EntraTokenRegistry(EntraOptions options);
  absl::StatusOr<std::string> ReadClientSecret(const EntraCredential& credential) const;
  boost::asio::awaitable<absl::StatusOr<FetchedToken>> Fetch(EntraCredential credential);

  const EntraOptions options_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ssl::context tls_context_;
  UpstreamPool pool_;  // used on the token thread only
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<EntraTokenSource>> sources_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// What RoutingSnapshot::Build uses: the token source for an instance with Entra ID auth.
// Without a registry (unit tests) such backends are unusable.
absl::StatusOr<std::shared_ptr<EntraTokenSource>> EntraSourceFor(const v1::InstanceAuth& auth,
                                                                 EntraTokenRegistry* registry);

}  // namespace spillway
