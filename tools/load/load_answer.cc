// See load_answer.h.
#include "tools/load/load_answer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/http/client_response.h"

namespace spillway::load {

using std::chrono::duration_cast;
using std::chrono::microseconds;

void AnswerHead::Field(absl::string_view name, absl::string_view value) {
  if (absl::EqualsIgnoreCase(name, "content-type")) {
    event_stream = IsEventStreamType(value);
  } else if (absl::EqualsIgnoreCase(name, "retry-after")) {
    retry_after.assign(value.data(), value.size());
  } else if (absl::EqualsIgnoreCase(name, "retry-after-ms")) {
    retry_after_ms.assign(value.data(), value.size());
  } else if (absl::EqualsIgnoreCase(name, "x-spillway-backend")) {
    backend.assign(value.data(), value.size());
  }
}

std::chrono::milliseconds AnswerHead::RetryAfter() const {
  return ::spillway::RetryAfter(retry_after_ms, retry_after);
}

bool LoadAnswer::Take(const AnswerHead& head, absl::string_view bytes, Clock::time_point at) {
  if (bytes.empty() || head.status / 100 != 2) {
    return true;  // an error body is read only to finish the exchange
  }
  if (head.event_stream) {
    if (!sse_.has_value()) sse_.emplace(on_gap_);
    return sse_->Feed(bytes, at);
  }
  if (body_.size() + bytes.size() <= kMaxKeptBody) {
    body_.append(bytes.data(), bytes.size());
  }
  return true;
}

RequestResult LoadAnswer::Result(const AnswerHead& head, absl::string_view error_kind,
                                 Clock::time_point start) const {
  RequestResult result;
  result.e2e = duration_cast<microseconds>(Clock::now() - start);
  result.status = head.status;
  result.backend = head.backend;
  if (sse_.has_value() && result.status / 100 == 2 && sse_->first_token().has_value()) {
    result.ttft = duration_cast<microseconds>(*sse_->first_token() - start);
  }
  if (result.status == 429) {  // counted as soon as the head said so, even if the body broke
    result.outcome = Outcome::kThrottled;
    if (head.has_retry_after()) {
      result.retry_after = head.RetryAfter();
    }
    return result;
  }
  result.outcome = Outcome::kError;
  if (!error_kind.empty()) {
    result.error_kind = std::string(error_kind);
    return result;
  }
  if (result.status / 100 != 2) {
    result.error_kind = absl::StrCat("http_", result.status);
    return result;
  }
  const Usage usage = sse_.has_value() ? sse_->usage() : ParseCompletionUsage(body_);
  result.prompt_tokens = usage.prompt_tokens;
  result.completion_tokens = usage.completion_tokens;
  if (sse_.has_value() && sse_->error_event()) {
    result.error_kind = "stream_error";
  } else if (sse_.has_value() && !sse_->done()) {
    result.error_kind = "no_done";  // the body ended without `data: [DONE]`
  } else {
    result.outcome = Outcome::kOk;
  }
  return result;
}

}  // namespace spillway::load
