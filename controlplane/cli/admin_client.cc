// See admin_client.h.
#include "controlplane/cli/admin_client.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "proto/spillway/v1/grpc_limits.h"

namespace spillway::cli {

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file: ", text.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*text));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file: ", path, " is empty"));
  }
  return token;
}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Create(const ConnectionOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  const bool tls = options.tls || !options.tls_ca_file.empty() || !options.tls_cert_file.empty();
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadPemFile("--tls-ca", options.tls_ca_file);
      if (!ca.ok()) {
        return ca.status();
      }
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadPemFile("--tls-cert", options.tls_cert_file);
      if (!cert.ok()) {
        return cert.status();
      }
      absl::StatusOr<std::string> key = ReadPemFile("--tls-key", options.tls_key_file);
      if (!key.ok()) {
        return key.status();
      }
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(v1::kMaxGrpcMessageBytes);
  arguments.SetMaxSendMessageSize(v1::kMaxGrpcMessageBytes);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.server, credentials, arguments);
  return std::unique_ptr<AdminClient>(new AdminClient(options, std::move(channel)));
}

AdminClient::AdminClient(ConnectionOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::Admin::NewStub(channel_)) {}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> AdminClient::Call(Method method, const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  if (!options_.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
  }
  Response response;
  const grpc::Status status = ((*stub_).*method)(&context, request, &response);
  if (!status.ok()) {
    // gRPC and Abseil share the canonical code numbers.
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return response;
}

absl::StatusOr<v1::ApplyResponse> AdminClient::Apply(const v1::ApplyRequest& request) {
  return Call<v1::ApplyRequest, v1::ApplyResponse>(&v1::Admin::Stub::Apply, request);
}

absl::StatusOr<v1::GetResponse> AdminClient::Get(const v1::GetRequest& request) {
  return Call<v1::GetRequest, v1::GetResponse>(&v1::Admin::Stub::Get, request);
}

absl::StatusOr<v1::ApplyResponse> AdminClient::Create(const v1::CreateRequest& request) {
  return Call<v1::CreateRequest, v1::ApplyResponse>(&v1::Admin::Stub::Create, request);
}

absl::StatusOr<v1::ApplyResponse> AdminClient::Delete(const v1::DeleteRequest& request) {
  return Call<v1::DeleteRequest, v1::ApplyResponse>(&v1::Admin::Stub::Delete, request);
}

absl::StatusOr<v1::CreateKeyResponse> AdminClient::CreateKey(const v1::CreateKeyRequest& request) {
  return Call<v1::CreateKeyRequest, v1::CreateKeyResponse>(&v1::Admin::Stub::CreateKey, request);
}

absl::StatusOr<v1::CreateKeyResponse> AdminClient::RotateKey(const v1::RotateKeyRequest& request) {
  return Call<v1::RotateKeyRequest, v1::CreateKeyResponse>(&v1::Admin::Stub::RotateKey, request);
}

absl::StatusOr<v1::ApplyResponse> AdminClient::Drain(const v1::DrainRequest& request) {
  return Call<v1::DrainRequest, v1::ApplyResponse>(&v1::Admin::Stub::Drain, request);
}

absl::StatusOr<v1::ApplyResponse> AdminClient::Undrain(const v1::UndrainRequest& request) {
  return Call<v1::UndrainRequest, v1::ApplyResponse>(&v1::Admin::Stub::Undrain, request);
}

absl::StatusOr<v1::Drill> AdminClient::StartDrill(const v1::DrillRequest& request) {
  return Call<v1::DrillRequest, v1::Drill>(&v1::Admin::Stub::StartDrill, request);
}

absl::StatusOr<v1::Drill> AdminClient::GetDrill(const v1::GetDrillRequest& request) {
  return Call<v1::GetDrillRequest, v1::Drill>(&v1::Admin::Stub::GetDrill, request);
}

absl::StatusOr<v1::ListDrillsResponse> AdminClient::ListDrills(
    const v1::ListDrillsRequest& request) {
  return Call<v1::ListDrillsRequest, v1::ListDrillsResponse>(&v1::Admin::Stub::ListDrills, request);
}

absl::StatusOr<v1::ApplyResponse> AdminClient::RevokeKey(const v1::RevokeKeyRequest& request) {
  return Call<v1::RevokeKeyRequest, v1::ApplyResponse>(&v1::Admin::Stub::RevokeKey, request);
}

absl::StatusOr<v1::ListAgentsResponse> AdminClient::ListAgents(
    const v1::ListAgentsRequest& request) {
  return Call<v1::ListAgentsRequest, v1::ListAgentsResponse>(&v1::Admin::Stub::ListAgents, request);
}

absl::StatusOr<v1::HealthOverlay> AdminClient::FleetHealth(const v1::FleetHealthRequest& request) {
  return Call<v1::FleetHealthRequest, v1::HealthOverlay>(&v1::Admin::Stub::FleetHealth, request);
}

absl::StatusOr<v1::UsageQueryResponse> AdminClient::QueryUsage(const v1::UsageQuery& request) {
  return Call<v1::UsageQuery, v1::UsageQueryResponse>(&v1::Admin::Stub::QueryUsage, request);
}

}  // namespace spillway::cli
