// See fake_admin_server.h.
#include "tests/controlplane/cli/fake_admin_server.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace spillway::test {

absl::StatusOr<std::unique_ptr<FakeAdminServer>> FakeAdminServer::Start(
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  std::unique_ptr<FakeAdminServer> fake(new FakeAdminServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      "127.0.0.1:0", credentials ? credentials : grpc::InsecureServerCredentials(), &fake->port_);
  builder.RegisterService(fake.get());
  fake->server_ = builder.BuildAndStart();
  if (fake->server_ == nullptr || fake->port_ == 0) {
    return absl::InternalError("the fake Admin server did not start");
  }
  return fake;
}

FakeAdminServer::~FakeAdminServer() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
}

std::string FakeAdminServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

void FakeAdminServer::SetResponse(const std::string& method,
                                  const google::protobuf::Message& response) {
  std::shared_ptr<google::protobuf::Message> copy(response.New());
  copy->CopyFrom(response);
  absl::MutexLock lock(&mu_);
  responses_[method] = std::move(copy);
}

void FakeAdminServer::SetFailure(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  failure_ = std::move(status);
}

void FakeAdminServer::SetDelay(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  delay_ = delay;
}

std::vector<RecordedCall> FakeAdminServer::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

grpc::Status FakeAdminServer::Handle(absl::string_view method, grpc::ServerContext* context,
                                     const google::protobuf::Message& request,
                                     google::protobuf::Message* response) {
  RecordedCall call;
  call.method = std::string(method);
  const auto& metadata = context->client_metadata();
  if (const auto it = metadata.find("authorization"); it != metadata.end()) {
    call.authorization = std::string(it->second.data(), it->second.size());
  }
  std::shared_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  call.request = std::move(copy);

  absl::Duration delay;
  grpc::Status failure;
  std::shared_ptr<const google::protobuf::Message> canned;
  {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
    delay = delay_;
    failure = failure_;
    if (const auto it = responses_.find(std::string(method)); it != responses_.end()) {
      canned = it->second;
    }
  }
  absl::SleepFor(delay);
  if (!failure.ok()) {
    return failure;
  }
  if (canned != nullptr) {
    response->CopyFrom(*canned);
  }
  return grpc::Status::OK;
}

grpc::Status FakeAdminServer::Apply(grpc::ServerContext* context, const v1::ApplyRequest* request,
                                    v1::ApplyResponse* response) {
  return Handle("Apply", context, *request, response);
}

grpc::Status FakeAdminServer::Get(grpc::ServerContext* context, const v1::GetRequest* request,
                                  v1::GetResponse* response) {
  return Handle("Get", context, *request, response);
}

grpc::Status FakeAdminServer::Create(grpc::ServerContext* context, const v1::CreateRequest* request,
                                     v1::ApplyResponse* response) {
  return Handle("Create", context, *request, response);
}

grpc::Status FakeAdminServer::Delete(grpc::ServerContext* context, const v1::DeleteRequest* request,
                                     v1::ApplyResponse* response) {
  return Handle("Delete", context, *request, response);
}

grpc::Status FakeAdminServer::CreateKey(grpc::ServerContext* context,
                                        const v1::CreateKeyRequest* request,
                                        v1::CreateKeyResponse* response) {
  return Handle("CreateKey", context, *request, response);
}

grpc::Status FakeAdminServer::RotateKey(grpc::ServerContext* context,
                                        const v1::RotateKeyRequest* request,
                                        v1::CreateKeyResponse* response) {
  return Handle("RotateKey", context, *request, response);
}

grpc::Status FakeAdminServer::RevokeKey(grpc::ServerContext* context,
                                        const v1::RevokeKeyRequest* request,
                                        v1::ApplyResponse* response) {
  return Handle("RevokeKey", context, *request, response);
}

grpc::Status FakeAdminServer::ListAgents(grpc::ServerContext* context,
                                         const v1::ListAgentsRequest* request,
                                         v1::ListAgentsResponse* response) {
  return Handle("ListAgents", context, *request, response);
}

grpc::Status FakeAdminServer::FleetHealth(grpc::ServerContext* context,
                                          const v1::FleetHealthRequest* request,
                                          v1::HealthOverlay* response) {
  return Handle("FleetHealth", context, *request, response);
}

grpc::Status FakeAdminServer::QueryUsage(grpc::ServerContext* context,
                                         const v1::UsageQuery* request,
                                         v1::UsageQueryResponse* response) {
  return Handle("QueryUsage", context, *request, response);
}

}  // namespace spillway::test
