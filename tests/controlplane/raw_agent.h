// A raw AgentSync stream for tests that speak the protocol themselves: for whichever agent
// they say, with messages no real agent would send (another agent's usage, a made-up history).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "spillway/v1/agent_sync.grpc.pb.h"

namespace spillway::test {

// A raw AgentSync stream, speaking for whoever the test says.
class RawAgent {
 public:
  explicit RawAgent(int port, std::shared_ptr<grpc::ChannelCredentials> credentials =
                                  grpc::InsecureChannelCredentials())
      : stub_(v1::AgentSync::NewStub(
            grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), std::move(credentials)))),
        stream_(Start()) {}

  bool Hello(const std::string& agent_id, const std::string& region) {
    v1::AgentMessage hello;
    hello.mutable_hello()->set_agent_id(agent_id);
    hello.mutable_hello()->set_region(region);
    return stream_->Write(hello);
  }
  bool Write(const v1::AgentMessage& message) { return stream_->Write(message); }
  // Reads until the control plane ends the stream; its status.
  grpc::Status Drain() {
    v1::ControlMessage message;
    while (stream_->Read(&message)) {
    }
    return stream_->Finish();
  }
  // Reads until the control plane acknowledges usage batch `sequence` (true) or the stream
  // ends (false).
  bool ReadUsageAck(uint64_t sequence) {
    v1::ControlMessage message;
    while (stream_->Read(&message)) {
      if (message.has_usage_ack() && message.usage_ack().sequence() >= sequence) {
        return true;
      }
    }
    return false;
  }
  // Reads until a table arrives (true) or the stream ends (false).
  bool ReadTable() {
    v1::ControlMessage message;
    while (stream_->Read(&message)) {
      if (message.has_table()) {
        return true;
      }
    }
    return false;
  }

 private:
  // A deadline, so a control plane that wrongly keeps the stream open fails the test.
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControlMessage>> Start() {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return stub_->Sync(&context_);
  }

  std::unique_ptr<v1::AgentSync::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControlMessage>> stream_;
};

}  // namespace spillway::test
