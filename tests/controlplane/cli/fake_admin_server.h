// An in-process Admin gRPC server for spillwayctl's tests: records every request with the
// authorization metadata it came with and answers with canned responses or a canned error.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "spillway/v1/admin.grpc.pb.h"

namespace spillway::test {

struct RecordedCall {
  std::string method;         // "Apply", "Get", ...
  std::string authorization;  // the "authorization" metadata, empty when absent
  std::shared_ptr<const google::protobuf::Message> request;

  template <typename T>
  const T& As() const {
    return dynamic_cast<const T&>(*request);
  }
};

class FakeAdminServer final : public v1::Admin::Service {
 public:
  // Listens on 127.0.0.1 on a free port, with `credentials` (default: plaintext).
  static absl::StatusOr<std::unique_ptr<FakeAdminServer>> Start(
      std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);
  ~FakeAdminServer() override;

  std::string address() const;  // "127.0.0.1:<port>"

  // The answer of `method` ("Apply", "QueryUsage", ...); unset methods answer an empty message.
  void SetResponse(const std::string& method, const google::protobuf::Message& response);
  // Every call fails with `status` until cleared with grpc::Status::OK.
  void SetFailure(grpc::Status status);
  // Every call waits this long before answering.
  void SetDelay(absl::Duration delay);

  std::vector<RecordedCall> calls() const;

  grpc::Status Apply(grpc::ServerContext* context, const v1::ApplyRequest* request,
                     v1::ApplyResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const v1::GetRequest* request,
                   v1::GetResponse* response) override;
  grpc::Status Create(grpc::ServerContext* context, const v1::CreateRequest* request,
                      v1::ApplyResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const v1::DeleteRequest* request,
                      v1::ApplyResponse* response) override;
  grpc::Status CreateKey(grpc::ServerContext* context, const v1::CreateKeyRequest* request,
                         v1::CreateKeyResponse* response) override;
  grpc::Status RotateKey(grpc::ServerContext* context, const v1::RotateKeyRequest* request,
                         v1::CreateKeyResponse* response) override;
  grpc::Status RevokeKey(grpc::ServerContext* context, const v1::RevokeKeyRequest* request,
                         v1::ApplyResponse* response) override;
  grpc::Status ListAgents(grpc::ServerContext* context, const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;
  grpc::Status FleetHealth(grpc::ServerContext* context, const v1::FleetHealthRequest* request,
                           v1::HealthOverlay* response) override;
  grpc::Status QueryUsage(grpc::ServerContext* context, const v1::UsageQuery* request,
                          v1::UsageQueryResponse* response) override;

 private:
  FakeAdminServer() = default;

  grpc::Status Handle(absl::string_view method, grpc::ServerContext* context,
                      const google::protobuf::Message& request,
                      google::protobuf::Message* response);

  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  std::vector<RecordedCall> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const google::protobuf::Message>> responses_
      ABSL_GUARDED_BY(mu_);
  grpc::Status failure_ ABSL_GUARDED_BY(mu_);
  absl::Duration delay_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

}  // namespace spillway::test
