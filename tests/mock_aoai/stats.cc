// See stats.h. The log is a ring of reused entries so recording allocates nothing once warm.
#include "tests/mock_aoai/stats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {

Stats::Stats() { log_.resize(kLogCapacity); }

Stats::PerDeployment& Stats::FindLocked(absl::string_view deployment) {
  auto it = deployments_.find(deployment);
  if (it == deployments_.end()) {
    it = deployments_.emplace(std::string(deployment), PerDeployment{}).first;
  }
  return it->second;
}

void Stats::Record(absl::Time arrival, absl::string_view deployment, int status, bool stream,
                   absl::string_view fault, const RequestTrace& trace) {
  absl::MutexLock lock(&mu_);
  PerDeployment& stats = FindLocked(deployment);
  ++stats.requests;
  ++stats.by_status[status];

  Entry& entry = log_[log_next_];
  entry.arrival_ms = absl::ToDoubleMilliseconds(arrival - absl::UnixEpoch());
  entry.deployment.assign(deployment.data(), deployment.size());
  entry.status = status;
  entry.stream = stream;
  entry.fault = fault;
  entry.method.assign(trace.method.data(), trace.method.size());
  const absl::string_view path = trace.path.substr(0, kLogPathLimit);
  entry.path.assign(path.data(), path.size());
  // Ids come from clients too (paths, bodies): bounded like the path.
  const absl::string_view id = trace.response_id.substr(0, kLogPathLimit);
  entry.response_id.assign(id.data(), id.size());
  const absl::string_view previous = trace.previous_response_id.substr(0, kLogPathLimit);
  entry.previous_response_id.assign(previous.data(), previous.size());
  const absl::string_view conversation = trace.conversation_id.substr(0, kLogPathLimit);
  entry.conversation_id.assign(conversation.data(), conversation.size());
  log_next_ = (log_next_ + 1) % kLogCapacity;
  ++log_total_;
}

void Stats::BeginAnswer(absl::string_view deployment) {
  absl::MutexLock lock(&mu_);
  ++FindLocked(deployment).in_flight;
}

void Stats::EndAnswer(absl::string_view deployment) {
  absl::MutexLock lock(&mu_);
  PerDeployment& stats = FindLocked(deployment);
  stats.in_flight = std::max<int64_t>(0, stats.in_flight - 1);  // a reset may come between
}

void Stats::AddUsage(absl::string_view deployment, const Usage& usage) {
  absl::MutexLock lock(&mu_);
  Usage& sum = FindLocked(deployment).usage;
  sum.prompt_tokens += usage.prompt_tokens;
  sum.completion_tokens += usage.completion_tokens;
  sum.cached_tokens += usage.cached_tokens;
  sum.total_tokens += usage.total_tokens;
}

void Stats::CountTokenIssued(absl::string_view grant) {
  absl::MutexLock lock(&mu_);
  ++tokens_issued_[std::string(grant)];
}

void Stats::CountTokenRefused() {
  absl::MutexLock lock(&mu_);
  ++token_requests_refused_;
}

void Stats::CountBearerRejected(bool expired) {
  absl::MutexLock lock(&mu_);
  ++(expired ? expired_bearer_rejected_ : invalid_bearer_rejected_);
}

void Stats::CountConnection(bool h2) {
  absl::MutexLock lock(&mu_);
  ++(h2 ? h2_connections_ : http1_connections_);
}

void Stats::CountHangAbandoned() {
  absl::MutexLock lock(&mu_);
  ++hangs_abandoned_;
}

void Stats::RealtimeOpened() {
  absl::MutexLock lock(&mu_);
  ++realtime_sessions_;
  ++realtime_open_;
}

void Stats::RealtimeEnded(absl::string_view deployment, absl::string_view by, int code,
                          absl::string_view reason) {
  absl::MutexLock lock(&mu_);
  --realtime_open_;
  if (realtime_ends_.size() == kRealtimeEnds) {
    realtime_ends_.erase(realtime_ends_.begin());
  }
  realtime_ends_.push_back(
      {std::string(deployment), std::string(by), code, std::string(reason.substr(0, 200))});
}

std::string Stats::ToJson(const StoreCounts& responses, const StoreCounts& conversations) {
  absl::MutexLock lock(&mu_);
  std::string out;
  out.reserve(256 + 256 * std::min<uint64_t>(log_total_, kLogCapacity));
  out += "{\"deployments\":{";
  bool first = true;
  for (const auto& [name, stats] : deployments_) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, name);
    absl::StrAppend(&out, ":{\"requests\":", stats.requests, ",\"in_flight\":", stats.in_flight,
                    ",\"by_status\":{");
    bool first_status = true;
    for (const auto& [status, count] : stats.by_status) {
      absl::StrAppend(&out, first_status ? "" : ",", "\"", status, "\":", count);
      first_status = false;
    }
    absl::StrAppend(&out, "},\"usage\":{\"prompt_tokens\":", stats.usage.prompt_tokens,
                    ",\"completion_tokens\":", stats.usage.completion_tokens,
                    ",\"cached_tokens\":", stats.usage.cached_tokens,
                    ",\"total_tokens\":", stats.usage.total_tokens, "}}");
  }
  out += "},\"log\":[";
  const uint64_t kept = std::min<uint64_t>(log_total_, kLogCapacity);
  const size_t start = kept < kLogCapacity ? 0 : log_next_;
  for (uint64_t i = 0; i < kept; ++i) {
    const Entry& entry = log_[(start + i) % kLogCapacity];
    absl::StrAppend(&out, i == 0 ? "" : ",",
                    "{\"arrival_ms\":", absl::StrFormat("%.3f", entry.arrival_ms),
                    ",\"deployment\":");
    AppendJsonString(out, entry.deployment);
    absl::StrAppend(&out, ",\"status\":", entry.status,
                    ",\"stream\":", entry.stream ? "true" : "false", ",\"fault\":\"", entry.fault,
                    "\",\"method\":");
    AppendJsonString(out, entry.method);
    out += ",\"path\":";
    AppendJsonString(out, entry.path);
    out += ",\"response_id\":";
    AppendJsonString(out, entry.response_id);
    out += ",\"previous_response_id\":";
    AppendJsonString(out, entry.previous_response_id);
    out += ",\"conversation_id\":";
    AppendJsonString(out, entry.conversation_id);
    out += '}';
  }
  absl::StrAppend(&out, "],\"log_dropped\":", log_total_ - kept, ",\"entra\":{\"tokens_issued\":{");
  // Every grant is listed, zero or not, so readers need no defaults.
  bool first_grant = true;
  for (const char* grant : {"managed_identity", "app_service_identity", "client_credentials"}) {
    const auto it = tokens_issued_.find(grant);
    absl::StrAppend(&out, first_grant ? "" : ",", "\"", grant,
                    "\":", it == tokens_issued_.end() ? 0 : it->second);
    first_grant = false;
  }
  absl::StrAppend(
      &out, "},\"token_requests_refused\":", token_requests_refused_,
      ",\"bearer_rejected\":{\"expired\":", expired_bearer_rejected_,
      ",\"invalid\":", invalid_bearer_rejected_,
      "}},\"connections\":{\"http1\":", http1_connections_, ",\"h2\":", h2_connections_,
      "},\"hangs_abandoned\":", hangs_abandoned_, ",\"responses\":{\"stored\":", responses.stored,
      ",\"evicted\":", responses.evicted, "},\"conversations\":{\"stored\":", conversations.stored,
      ",\"evicted\":", conversations.evicted, ",\"items_evicted\":", conversations.items_evicted,
      "},\"realtime\":{\"sessions\":", realtime_sessions_, ",\"open\":", realtime_open_,
      ",\"ends\":[");
  bool first_end = true;
  for (const RealtimeEnd& end : realtime_ends_) {
    absl::StrAppend(&out, first_end ? "" : ",", "{\"deployment\":");
    AppendJsonString(out, end.deployment);
    out += ",\"by\":";
    AppendJsonString(out, end.by);
    absl::StrAppend(&out, ",\"code\":", end.code, ",\"reason\":");
    AppendJsonString(out, end.reason);
    out += '}';
    first_end = false;
  }
  out += "]}}";
  return out;
}

void Stats::Reset() {
  absl::MutexLock lock(&mu_);
  deployments_.clear();
  log_next_ = 0;
  log_total_ = 0;
  tokens_issued_.clear();
  token_requests_refused_ = 0;
  expired_bearer_rejected_ = 0;
  invalid_bearer_rejected_ = 0;
  http1_connections_ = 0;
  h2_connections_ = 0;
  hangs_abandoned_ = 0;
  realtime_sessions_ = 0;
  realtime_ends_.clear();  // open sessions stay counted in realtime_open_
}

}  // namespace spillway::mock
