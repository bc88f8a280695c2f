// spillwayctl's connection to spillway-cp: a gRPC channel (plaintext, TLS or mutual TLS), and
// on every call the operator's bearer token and a deadline.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "spillway/v1/admin.grpc.pb.h"

namespace spillway::cli {

struct ConnectionOptions {
  std::string server;  // host:port
  std::string token;   // empty: no authorization metadata
  // TLS is on when `tls` is set or any file below is given; an empty CA file means the
  // system roots.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;  // client certificate (needs tls_key_file)
  std::string tls_key_file;
  absl::Duration timeout = absl::Seconds(10);
};

// Reads an operator token from a file (surrounding whitespace trimmed); an unreadable or empty
// file is an error naming the path.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Failed calls come back as absl::Status with the gRPC code and the server's message untouched.
class AdminClient {
 public:
  // Reads the certificate files now, so an unreadable one is a local error (exit 2), not a
  // connection failure. Does not connect: the first call does.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Create(const ConnectionOptions& options);

  const ConnectionOptions& options() const { return options_; }

  absl::StatusOr<v1::ApplyResponse> Apply(const v1::ApplyRequest& request);
  absl::StatusOr<v1::GetResponse> Get(const v1::GetRequest& request);
  absl::StatusOr<v1::ApplyResponse> Create(const v1::CreateRequest& request);
  absl::StatusOr<v1::ApplyResponse> Delete(const v1::DeleteRequest& request);
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(const v1::CreateKeyRequest& request);
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(const v1::RotateKeyRequest& request);
  absl::StatusOr<v1::ApplyResponse> RevokeKey(const v1::RevokeKeyRequest& request);
  absl::StatusOr<v1::ListAgentsResponse> ListAgents(const v1::ListAgentsRequest& request);
  absl::StatusOr<v1::HealthOverlay> FleetHealth(const v1::FleetHealthRequest& request);
  absl::StatusOr<v1::UsageQueryResponse> QueryUsage(const v1::UsageQuery& request);
  absl::StatusOr<v1::ApplyResponse> Drain(const v1::DrainRequest& request);
  absl::StatusOr<v1::ApplyResponse> Undrain(const v1::UndrainRequest& request);
  absl::StatusOr<v1::Drill> StartDrill(const v1::DrillRequest& request);
  absl::StatusOr<v1::Drill> GetDrill(const v1::GetDrillRequest& request);
  absl::StatusOr<v1::ListDrillsResponse> ListDrills(const v1::ListDrillsRequest& request);

 private:
  AdminClient(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel);

  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method, const Request& request);

  const ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> stub_;
};

}  // namespace spillway::cli
