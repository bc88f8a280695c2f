// The Batch API (files_api.h): a batch reads its input file on this mock (purpose "batch"), counts
// its requests, and moves validating -> in_progress -> completed over --batch-ms, as a clock
// read at each request tells; a cancel makes it cancelling, then cancelled.
#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/files_api.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

constexpr absl::string_view kEndpoints[] = {"/chat/completions", "/embeddings", "/completions",
                                            "/responses"};

bool IsEndpoint(absl::string_view endpoint) {
  absl::ConsumePrefix(&endpoint, "/v1");
  return std::find(std::begin(kEndpoints), std::end(kEndpoints), endpoint) != std::end(kEndpoints);
}

// The status a batch has at `now` (`created`: the answer to its create).
absl::string_view StatusAt(const BatchRecord& batch, absl::Time now, absl::Duration delay,
                           bool created) {
  if (batch.total == 0) return "failed";
  if (batch.cancelled.has_value()) return now > *batch.cancelled ? "cancelled" : "cancelling";
  if (created) return "validating";
  return now < batch.created + delay ? "in_progress" : "completed";
}

json::object BatchObject(const BatchRecord& batch, absl::Time now, absl::Duration delay,
                         bool created = false) {
  const absl::string_view status = StatusAt(batch, now, delay, created);
  const int64_t created_at = absl::ToUnixSeconds(batch.created);
  const int64_t done_at = absl::ToUnixSeconds(batch.created + delay);
  const int64_t cancelled_at = batch.cancelled ? absl::ToUnixSeconds(*batch.cancelled) : 0;
  auto when = [](bool happened, int64_t at) { return happened ? json::value(at) : nullptr; };
  json::object object;
  object["id"] = Js(batch.id);
  object["object"] = "batch";
  object["endpoint"] = Js(batch.endpoint);
  object["errors"] = nullptr;
  if (status == "failed") {
    object["errors"] =
        json::object{{"object", "list"},
                     {"data", json::array{json::object{{"code", "empty_file"},
                                                       {"message",
                                                        "The input file is empty. Please ensure "
                                                        "that the batch contains at least one "
                                                        "request."},
                                                       {"param", nullptr},
                                                       {"line", nullptr}}}}};
  }
  object["input_file_id"] = Js(batch.input_file_id);
  object["completion_window"] = Js(batch.completion_window);
  object["status"] = Js(status);
  object["output_file_id"] = nullptr;
  object["error_file_id"] = nullptr;
  object["created_at"] = created_at;
  object["in_progress_at"] = when(status == "in_progress" || status == "completed", created_at);
  object["expires_at"] = created_at + 24 * 3600;
  object["finalizing_at"] = when(status == "completed", done_at);
  object["completed_at"] = when(status == "completed", done_at);
  object["failed_at"] = when(status == "failed", created_at);
  object["expired_at"] = nullptr;
  object["cancelling_at"] = when(batch.cancelled.has_value(), cancelled_at);
  object["cancelled_at"] = when(status == "cancelled", cancelled_at);
  object["request_counts"] = json::object{{"total", batch.total},
                                          {"completed", status == "completed" ? batch.total : 0},
                                          {"failed", 0}};
  object["metadata"] = batch.metadata;
  return object;
}

std::optional<OpenAiError> ParseCreate(absl::string_view body, BatchRecord& batch) {
  json::object object;
  if (std::optional<OpenAiError> error = ParseObject(body, object)) return error;
  if (auto error = ReadString(object, "input_file_id", true, batch.input_file_id)) return error;
  if (auto error = ReadString(object, "endpoint", true, batch.endpoint)) return error;
  if (auto error = ReadString(object, "completion_window", true, batch.completion_window)) {
    return error;
  }
  if (!IsEndpoint(batch.endpoint)) {
    return BadRequest(absl::StrCat("Invalid value: '", batch.endpoint,
                                   "'. Supported values are: '/v1/chat/completions', "
                                   "'/v1/embeddings', '/v1/completions' and '/v1/responses'."),
                      "endpoint", "invalid_value");
  }
  if (batch.completion_window != "24h") {
    return BadRequest(absl::StrCat("Invalid value: '", batch.completion_window,
                                   "'. Supported values are: '24h'."),
                      "completion_window", "invalid_value");
  }
  if (const json::value* metadata = object.if_contains("metadata"); metadata != nullptr) {
    if (!metadata->is_object() && !metadata->is_null()) {
      return InvalidType("metadata", "an object", *metadata);
    }
    batch.metadata = *metadata;
  }
  return std::nullopt;
}

void Create(FilesCall& call) {
  BatchRecord batch;
  if (std::optional<OpenAiError> error = ParseCreate(call.body(), batch)) {
    call.Fail(*error);
    return;
  }
  // The input must be on this resource: another one's file id is unknown here.
  const std::optional<FileRecord> input = call.apis().files().Get(batch.input_file_id);
  if (!input.has_value()) {
    OpenAiError error = FileNotFound(batch.input_file_id);
    error.param = "input_file_id";
    call.Fail(error);
    return;
  }
  if (input->purpose != "batch") {
    call.Fail(BadRequest(absl::StrCat("The input file '", input->id,
                                      "' must have purpose 'batch', not '", input->purpose, "'."),
                         "input_file_id", "invalid_value"));
    return;
  }
  batch.id = NewHexId("batch_", 32);
  batch.created = call.answer().arrival();
  batch.total = static_cast<int64_t>(input->lines);
  const json::object object =
      BatchObject(batch, batch.created, call.state().config().batch_delay, /*created=*/true);
  call.apis().batches().Put(std::move(batch));
  call.Succeed(object);
}

void Retrieve(FilesCall& call, absl::string_view id) {
  const std::optional<BatchRecord> batch = call.apis().batches().Get(id);
  if (!batch.has_value()) {
    call.Fail(NotFound(absl::StrCat("Batch with id '", id, "' not found.")));
    return;
  }
  call.Succeed(BatchObject(*batch, call.answer().arrival(), call.state().config().batch_delay));
}

void Cancel(FilesCall& call, absl::string_view id) {
  const absl::Time now = call.answer().arrival();
  const absl::Duration delay = call.state().config().batch_delay;
  absl::string_view refused;  // the status that cannot be cancelled
  const std::optional<BatchRecord> batch =
      call.apis().batches().Update(id, [&](BatchRecord& batch) {
        const absl::string_view status = StatusAt(batch, now, delay, false);
        if (status == "completed" || status == "failed") {
          refused = status;
        } else if (!batch.cancelled.has_value()) {
          batch.cancelled = now;
        }
      });
  if (!batch.has_value()) {
    call.Fail(NotFound(absl::StrCat("Batch with id '", id, "' not found.")));
    return;
  }
  if (!refused.empty()) {
    call.Fail(BadRequest(absl::StrCat("Cannot cancel a batch with status '", refused, "'.")));
    return;
  }
  call.Succeed(BatchObject(*batch, now, delay));
}

void List(FilesCall& call) {
  const absl::Time now = call.answer().arrival();
  json::array all;
  for (const BatchRecord& batch : call.apis().batches().All()) {
    all.push_back(BatchObject(batch, now, call.state().config().batch_delay));
  }
  call.SucceedList(all);
}

}  // namespace

void ServeBatches(FilesCall& call) {
  const absl::string_view method = call.answer().request().method;
  CollectionPath path;
  const bool ok = SplitCollectionPath(call.route().collection_path, path) && path.sub_id.empty();
  if (ok && path.id.empty() && method == "POST") {
    if (!call.TakeFault("Batch_Create")) Create(call);
  } else if (ok && path.id.empty() && method == "GET") {
    if (!call.TakeFault("Batch_List")) List(call);
  } else if (ok && !path.id.empty() && path.sub.empty() && method == "GET") {
    if (!call.TakeFault("Batch_Get")) Retrieve(call, path.id);
  } else if (ok && !path.id.empty() && path.sub == "cancel" && method == "POST") {
    if (!call.TakeFault("Batch_Cancel")) Cancel(call, path.id);
  } else {
    call.answer().Fail(404, "", "404", "Resource not found");
  }
}

}  // namespace spillway::mock
