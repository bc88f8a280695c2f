// See sim_agent.h.
#include "tests/bench/sim_agent.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_keepalive.h"

namespace spillway::bench {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// What the simulated agents need of a ControlMessage: a table's version and region, or a
// budget's first share.
struct ControlHeader {
  bool is_table = false;
  uint64_t version = 0;
  std::string region;
  std::size_t bytes = 0;
  bool is_budgets = false;
  BudgetSample budget;
};

bool IsSubmessage(uint32_t tag, int number) {
  return WireFormatLite::GetTagFieldNumber(tag) == number &&
         WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
}

bool ReadString(CodedInputStream& in, std::string* value) {
  uint32_t size = 0;
  return in.ReadVarint32(&size) && in.ReadString(value, static_cast<int>(size));
}

// Reads the fields of one length-delimited submessage with `field(tag)`, which returns
// false on malformed input.
template <typename Field>
bool ReadSubmessage(CodedInputStream& in, Field field) {
  uint32_t length = 0;
  if (!in.ReadVarint32(&length)) {
    return false;
  }
  const auto limit = in.PushLimit(static_cast<int>(length));
  while (const uint32_t tag = in.ReadTag()) {
    if (!field(tag)) {
      return false;
    }
  }
  const bool whole = in.ConsumedEntireMessage();
  in.PopLimit(limit);
  return whole;
}

bool ReadTable(CodedInputStream& in, ControlHeader& header) {
  header.is_table = true;
  return ReadSubmessage(in, [&](uint32_t tag) {
    switch (WireFormatLite::GetTagFieldNumber(tag)) {
      case v1::RoutingTable::kVersionFieldNumber:
        return in.ReadVarint64(&header.version);
      case v1::RoutingTable::kRegionFieldNumber:
        return ReadString(in, &header.region);
      default:
        return WireFormatLite::SkipField(&in, tag);
    }
  });
}

// The first value of a packed uint64 list; the rest is skipped.
bool ReadFirstPacked(CodedInputStream& in, uint64_t* first) {
  uint32_t length = 0;
  if (!in.ReadVarint32(&length)) {
    return false;
  }
  const auto limit = in.PushLimit(static_cast<int>(length));
  const bool read = (length == 0 || in.ReadVarint64(first)) && in.Skip(in.BytesUntilLimit());
  in.PopLimit(limit);
  return read;
}

bool ReadBudgets(CodedInputStream& in, ControlHeader& header) {
  header.is_budgets = true;
  bool first = true;
  return ReadSubmessage(in, [&](uint32_t tag) {
    switch (WireFormatLite::GetTagFieldNumber(tag)) {
      case v1::TenantBudgets::kEpochFieldNumber:
        return in.ReadVarint64(&header.budget.epoch);
      case v1::TenantBudgets::kTenantsFieldNumber:
        // The columns' first tenant and its limit.
        return ReadSubmessage(in, [&](uint32_t column_tag) {
          switch (WireFormatLite::GetTagFieldNumber(column_tag)) {
            case v1::BudgetTenants::kNamesFieldNumber:
              if (!header.budget.tenant.empty()) {
                return WireFormatLite::SkipField(&in, column_tag);
              }
              return ReadString(in, &header.budget.tenant);
            case v1::BudgetTenants::kLimitTokensPerMinuteFieldNumber:
              return ReadFirstPacked(in, &header.budget.limit_tokens_per_minute);
            default:
              return WireFormatLite::SkipField(&in, column_tag);
          }
        });
      case v1::TenantBudgets::kTokensPerMinuteFieldNumber:
        return ReadFirstPacked(in, &header.budget.tokens_per_minute);
      default:
        break;
    }
    if (!first || !IsSubmessage(tag, v1::TenantBudgets::kBudgetsFieldNumber)) {
      return WireFormatLite::SkipField(&in, tag);
    }
    first = false;
    return ReadSubmessage(in, [&](uint32_t budget_tag) {
      switch (WireFormatLite::GetTagFieldNumber(budget_tag)) {
        case v1::TenantBudget::kTenantFieldNumber:
          return ReadString(in, &header.budget.tenant);
        case v1::TenantBudget::kTokensPerMinuteFieldNumber:
          return in.ReadVarint64(&header.budget.tokens_per_minute);
        case v1::TenantBudget::kLimitTokensPerMinuteFieldNumber:
          return in.ReadVarint64(&header.budget.limit_tokens_per_minute);
        default:
          return WireFormatLite::SkipField(&in, budget_tag);
      }
    });
  });
}

// Reads the header straight off the wire, skipping the rest. 1,000 agents parsing 1,000
// tables of half a megabyte on the benchmark's own cores would measure the benchmark; real
// agents each parse their one table on their own host.
absl::StatusOr<ControlHeader> ReadControlHeader(grpc::ByteBuffer& buffer) {
  ControlHeader header;
  header.bytes = buffer.Length();
  grpc::ProtoBufferReader reader(&buffer);
  CodedInputStream in(&reader);
  while (const uint32_t tag = in.ReadTag()) {
    bool read = true;
    if (IsSubmessage(tag, v1::ControlMessage::kTableFieldNumber)) {
      read = ReadTable(in, header);
    } else if (IsSubmessage(tag, v1::ControlMessage::kBudgetsFieldNumber)) {
      read = ReadBudgets(in, header);
    } else {
      read = WireFormatLite::SkipField(&in, tag);
    }
    if (!read) {
      return absl::DataLossError("malformed ControlMessage");
    }
  }
  if (!in.ConsumedEntireMessage()) {
    return absl::DataLossError("malformed ControlMessage");
  }
  return header;
}

}  // namespace

void AckBoard::Opened(int agent, int stream) {
  absl::MutexLock lock(&mu_);
  stream_[agent] = stream;
}

void AckBoard::Acked(int agent, uint64_t version, std::size_t table_bytes) {
  absl::MutexLock lock(&mu_);
  acked_[agent] = version;
  acked_at_[agent] = Clock::now();
  table_bytes_[agent] = table_bytes;
}

void AckBoard::Budgets(int agent, int stream, BudgetSample sample) {
  absl::MutexLock lock(&mu_);
  const Clock::time_point now = Clock::now();
  if (budgets_stream_[agent] != stream) {
    budgets_stream_[agent] = stream;
    budgets_at_[agent] = now;  // the first on this stream is what settles it
  }
  budgets_[agent] = std::move(sample);
  last_budgets_ = now;
  ++budget_messages_;
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

absl::StatusOr<AckBoard::Clock::time_point> AckBoard::WaitForSettled(int stream, uint64_t version,
                                                                     absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto settled = [&](std::size_t a) {
    mu_.AssertHeld();
    return stream_[a] == stream && budgets_stream_[a] == stream && acked_[a] >= version;
  };
  auto done = [&] {
    mu_.AssertHeld();
    if (!failures_.empty()) {
      return true;
    }
    for (std::size_t a = 0; a < acked_.size(); ++a) {
      if (!settled(a)) {
        return false;
      }
    }
    return true;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&done), timeout)) {
    std::size_t behind = 0;
    for (std::size_t a = 0; a < acked_.size(); ++a) {
      behind += settled(a) ? 0 : 1;
    }
    return absl::DeadlineExceededError(absl::StrCat(
        behind, " agent(s) never had both budgets and version ", version, " on stream ", stream));
  }
  if (!failures_.empty()) {
    return absl::InternalError(failures_.front());
  }
  // An ack from before the stream opened is older than its budgets, so the later of the two
  // is when the agent was whole again.
  Clock::time_point last = Clock::time_point::min();
  for (std::size_t a = 0; a < acked_.size(); ++a) {
    last = std::max({last, budgets_at_[a], acked_at_[a]});
  }
  return last;
}

absl::StatusOr<AckBoard::Clock::time_point> AckBoard::WaitForBudgetsQuiet(absl::Duration quiet,
                                                                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const auto quiet_for = absl::ToChronoNanoseconds(quiet);
  while (absl::Now() < deadline) {
    Clock::time_point last;
    {
      absl::MutexLock lock(&mu_);
      last = last_budgets_;
    }
    const Clock::time_point now = Clock::now();
    if (now - last >= quiet_for) {
      return last;
    }
    absl::SleepFor(absl::FromChrono(quiet_for - (now - last)));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("tenant budgets kept arriving for ", absl::FormatDuration(timeout)));
}

std::size_t AckBoard::MaxTableBytes() const {
  absl::MutexLock lock(&mu_);
  return *std::max_element(table_bytes_.begin(), table_bytes_.end());
}

uint64_t AckBoard::BudgetMessages() const {
  absl::MutexLock lock(&mu_);
  return budget_messages_;
}

AckBoard::Overcommit AckBoard::BudgetOvercommit() const {
  struct Sum {
    uint64_t shares = 0;
    uint64_t limit = 0;
  };
  std::map<std::string, Sum> sums;
  {
    absl::MutexLock lock(&mu_);
    for (const BudgetSample& sample : budgets_) {
      if (sample.tenant.empty()) {
        continue;
      }
      Sum& sum = sums[sample.tenant];
      sum.shares += sample.tokens_per_minute;
      sum.limit = sample.limit_tokens_per_minute;
    }
  }
  Overcommit result;
  result.min = std::numeric_limits<double>::max();
  for (const auto& [tenant, sum] : sums) {
    if (sum.limit == 0) {
      continue;
    }
    const double ratio = static_cast<double>(sum.shares) / static_cast<double>(sum.limit);
    result.max = std::max(result.max, ratio);
    result.min = std::min(result.min, ratio);
    ++result.tenants;
  }
  if (result.tenants == 0) {
    result.min = 0;
  }
  return result;
}

// One stream of an agent, on a channel of its own. Kept until gRPC is done with it, after
// the agent has moved on to its next stream.
class SimAgent::Stream final : public grpc::ClientBidiReactor<v1::AgentMessage, grpc::ByteBuffer> {
 public:
  Stream(SimAgent& agent, int number, const std::string& target) : agent_(agent), number_(number) {
    grpc::ChannelArguments arguments;
    // A channel of its own and a subchannel pool of its own: one TCP connection per agent,
    // as 1,000 agent hosts would have, instead of streams multiplexed on one connection; and
    // a new one per stream, as after a control plane or the network dropped the last.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    SetKeepaliveArguments(arguments);
    stub_ = std::make_unique<Stub>(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
  }

  void Start(uint64_t applied_version) {
    agent_.board_.Opened(agent_.index_, number_);
    stub_->PrepareBidiStreamingCall(&context_, method_, grpc::StubOptions(), this);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_agent_id(agent_.id());
    hello.mutable_hello()->set_region(agent_.region_);
    hello.mutable_hello()->set_applied_version(applied_version);
    hello.mutable_hello()->set_build_version("bench");
    hello.mutable_hello()->set_reads_budget_columns(true);
    // Shown by `spillwayctl agents`; nothing connects to it.
    hello.mutable_hello()->set_listen_address(absl::StrCat("127.0.0.1:", 20000 + agent_.index_));
    Write(std::move(hello));
    StartRead(&in_);
    StartCall();
  }

  void Cancel() { context_.TryCancel(); }

  void WaitUntilDone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      return;  // the stream ended; OnDone says how
    }
    absl::StatusOr<ControlHeader> message = ReadControlHeader(in_);
    in_.Clear();
    AckBoard& board = agent_.board_;
    if (!message.ok()) {
      board.Failed(agent_.index_, std::string(message.status().message()));
    } else if (message->is_table) {
      v1::AgentMessage reply;
      if (message->region != agent_.region_ || message->version == 0) {
        reply.mutable_nack()->set_version(message->version);
        reply.mutable_nack()->set_reason(
            absl::StrCat("table for region '", message->region, "' version ", message->version));
        board.Failed(agent_.index_, reply.nack().reason());
      } else {
        reply.mutable_ack()->set_version(message->version);
        table_bytes_ = message->bytes;
      }
      Write(std::move(reply));
    } else if (message->is_budgets) {
      board.Budgets(agent_.index_, number_, std::move(message->budget));
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (ok && out_.front().has_ack()) {
      // Applied once the ack is on its way, as the agent applies before it acks.
      agent_.applied_version_.store(out_.front().ack().version(), std::memory_order_relaxed);
      agent_.board_.Acked(agent_.index_, out_.front().ack().version(), table_bytes_);
    }
    out_.pop_front();
    if (ok && !out_.empty()) {
      StartWrite(&out_.front());
    } else {
      writing_ = false;
    }
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      agent_.board_.Failed(agent_.index_,
                           absl::StrCat("stream ", number_, " ended: ", status.error_message()));
    }
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

 private:
  using Stub = grpc::TemplatedGenericStub<v1::AgentMessage, grpc::ByteBuffer>;

  // One write in flight at a time (gRPC's rule); the rest wait in order.
  void Write(v1::AgentMessage message) {
    absl::MutexLock lock(&mu_);
    out_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  SimAgent& agent_;
  const int number_;
  // gRPC keeps a pointer to the method name for the call's lifetime.
  const std::string method_ = "/spillway.v1.AgentSync/Sync";
  std::unique_ptr<Stub> stub_;
  grpc::ClientContext context_;
  grpc::ByteBuffer in_;
  std::size_t table_bytes_ = 0;  // reads never overlap

  absl::Mutex mu_;
  std::deque<v1::AgentMessage> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

SimAgent::SimAgent(int index, std::string region, AckBoard& board)
    : index_(index), region_(std::move(region)), board_(board) {}

SimAgent::~SimAgent() { Stop(); }

std::string SimAgent::id() const { return absl::StrFormat("bench-agent-%03d", index_); }

void SimAgent::Connect(const std::string& target, bool forget_table) {
  Drop();
  stream_ = std::make_unique<Stream>(*this, streams_++, target);
  stream_->Start(forget_table ? 0 : applied_version_.load(std::memory_order_relaxed));
}

void SimAgent::Drop() {
  if (stream_ != nullptr) {
    stream_->Cancel();
    dropped_.push_back(std::move(stream_));
  }
}

void SimAgent::Stop() {
  Drop();
  ReapDropped();
}

void SimAgent::ReapDropped() {
  for (const std::unique_ptr<Stream>& stream : dropped_) {
    stream->WaitUntilDone();
  }
  dropped_.clear();
}

}  // namespace spillway::bench
