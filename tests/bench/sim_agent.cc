// See sim_agent.h.
#include "tests/bench/sim_agent.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_keepalive.h"

namespace spillway::bench {
namespace {

// What the simulated agents need of a ControlMessage: the table's version and region.
struct TableHeader {
  bool is_table = false;
  uint64_t version = 0;
  std::string region;
  std::size_t bytes = 0;
};

// Reads the header straight off the wire, skipping the rest. 100 agents parsing 100 tables
// of half a megabyte on the benchmark's own cores would measure the benchmark; real agents
// each parse their one table on their own host.
absl::StatusOr<TableHeader> ReadTableHeader(grpc::ByteBuffer& buffer) {
  using google::protobuf::internal::WireFormatLite;
  TableHeader header;
  header.bytes = buffer.Length();
  grpc::ProtoBufferReader reader(&buffer);
  google::protobuf::io::CodedInputStream in(&reader);
  auto bad = [] { return absl::DataLossError("malformed ControlMessage"); };
  while (const uint32_t tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) != v1::ControlMessage::kTableFieldNumber ||
        WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) {
        return bad();
      }
      continue;
    }
    header.is_table = true;
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) {
      return bad();
    }
    const auto limit = in.PushLimit(static_cast<int>(length));
    while (const uint32_t field = in.ReadTag()) {
      const int number = WireFormatLite::GetTagFieldNumber(field);
      bool read = true;
      if (number == v1::RoutingTable::kVersionFieldNumber) {
        read = in.ReadVarint64(&header.version);
      } else if (number == v1::RoutingTable::kRegionFieldNumber) {
        uint32_t size = 0;
        read = in.ReadVarint32(&size) && in.ReadString(&header.region, static_cast<int>(size));
      } else {
        read = WireFormatLite::SkipField(&in, field);
      }
      if (!read) {
        return bad();
      }
    }
    in.PopLimit(limit);
  }
  if (!in.ConsumedEntireMessage()) {
    return bad();
  }
  return header;
}

}  // namespace

void AckBoard::Acked(int agent, uint64_t version, std::size_t table_bytes) {
  absl::MutexLock lock(&mu_);
  acked_[agent] = version;
  acked_at_[agent] = Clock::now();
  table_bytes_[agent] = table_bytes;
}

void AckBoard::Failed(int agent, std::string reason) {
  absl::MutexLock lock(&mu_);
  failures_.push_back(absl::StrCat("agent ", agent, ": ", reason));
}

absl::StatusOr<AckBoard::Clock::time_point> AckBoard::WaitForAll(uint64_t version,
                                                                 absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&] {
    mu_.AssertHeld();
    return !failures_.empty() ||
           std::all_of(acked_.begin(), acked_.end(), [&](uint64_t v) { return v >= version; });
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    const auto behind =
        std::count_if(acked_.begin(), acked_.end(), [&](uint64_t v) { return v < version; });
    return absl::DeadlineExceededError(
        absl::StrCat(behind, " agent(s) never acked version ", version));
  }
  if (!failures_.empty()) {
    return absl::InternalError(failures_.front());
  }
  return *std::max_element(acked_at_.begin(), acked_at_.end());
}

std::size_t AckBoard::MaxTableBytes() const {
  absl::MutexLock lock(&mu_);
  return *std::max_element(table_bytes_.begin(), table_bytes_.end());
}

SimAgent::SimAgent(int index, std::string region, const std::string& target, AckBoard& board)
    : index_(index), region_(std::move(region)), board_(board) {
  grpc::ChannelArguments arguments;
  // A channel of its own and a subchannel pool of its own: one TCP connection per agent,
  // as 100 agent hosts would have, instead of 100 streams multiplexed on one connection.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  SetKeepaliveArguments(arguments);
  stub_ = std::make_unique<Stub>(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
}

std::string SimAgent::id() const { return absl::StrFormat("bench-agent-%03d", index_); }

void SimAgent::Start() {
  stub_->PrepareBidiStreamingCall(&context_, method_, grpc::StubOptions(), this);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_id(id());
  hello.mutable_hello()->set_region(region_);
  hello.mutable_hello()->set_applied_version(0);
  hello.mutable_hello()->set_build_version("bench");
  // Shown by `spillwayctl agents`; nothing connects to it.
  hello.mutable_hello()->set_listen_address(absl::StrCat("127.0.0.1:", 20000 + index_));
  Write(std::move(hello));
  StartRead(&in_);
  StartCall();
}

void SimAgent::Stop() {
  context_.TryCancel();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&done_));
}

void SimAgent::OnReadDone(bool ok) {
  if (!ok) {
    return;  // the stream ended; OnDone says how
  }
  absl::StatusOr<TableHeader> table = ReadTableHeader(in_);
  in_.Clear();
  if (!table.ok()) {
    board_.Failed(index_, std::string(table.status().message()));
  } else if (table->is_table) {
    v1::AgentMessage reply;
    if (table->region != region_ || table->version == 0) {
      reply.mutable_nack()->set_version(table->version);
      reply.mutable_nack()->set_reason(
          absl::StrCat("table for region '", table->region, "' version ", table->version));
      board_.Failed(index_, reply.nack().reason());
    } else {
      reply.mutable_ack()->set_version(table->version);
      table_bytes_ = table->bytes;
    }
    Write(std::move(reply));
  }
  StartRead(&in_);
}

void SimAgent::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (ok && out_.front().has_ack()) {
    board_.Acked(index_, out_.front().ack().version(), table_bytes_);
  }
  out_.pop_front();
  if (ok && !out_.empty()) {
    StartWrite(&out_.front());
  } else {
    writing_ = false;
  }
}

void SimAgent::OnDone(const grpc::Status& status) {
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    board_.Failed(index_, absl::StrCat("stream ended: ", status.error_message()));
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}

void SimAgent::Write(v1::AgentMessage message) {
  absl::MutexLock lock(&mu_);
  out_.push_back(std::move(message));
  if (!writing_) {
    writing_ = true;
    StartWrite(&out_.front());
  }
}

}  // namespace spillway::bench
