// See files_api.h: the checks every request of these APIs takes, and the helpers their handlers
// share. Requests are recorded under the deployment "" (media uploads under theirs).
#include "tests/mock_aoai/files_api.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/multipart.h"
#include "tests/mock_aoai/responses_wire.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

}  // namespace

void FilesApiHandler::Handle(const Route& route, ApiAnswer& answer) {
  if (!answer.Authorize(route.kind == Route::Kind::kMedia ? route.deployment : "")) {
    return;
  }
  // The dated surface requires api-version; without it the resource "does not exist".
  if (!route.v1 && !route.has_api_version) {
    answer.Fail(404, route.deployment, "404", "Resource not found");
    return;
  }
  // /openai/v1 is unversioned: a dated api-version is refused.
  if (route.v1 && IsDatedApiVersion(route.api_version)) {
    answer.Fail(400, "", "BadRequest", "API version not supported");
    return;
  }
  FilesCall call(state_, route, answer);
  switch (route.kind) {
    case Route::Kind::kFiles:
      ServeFiles(call);
      return;
    case Route::Kind::kBatches:
      ServeBatches(call);
      return;
    case Route::Kind::kVectorStores:
      ServeVectorStores(call);
      return;
    case Route::Kind::kMedia:
      ServeMedia(call);
      return;
    default:
      answer.Fail(404, "", "404", "Resource not found");
      return;
  }
}

int64_t FilesCall::now() const { return absl::ToUnixSeconds(answer_.arrival()); }

bool FilesCall::TakeFault(absl::string_view operation) {
  return answer_.TakeFault(operation, route_.api_version, fault_);
}

void FilesCall::Fail(const OpenAiError& error) {
  std::string& body = answer_.scratch();
  body.clear();
  AppendOpenAiError(body, error);
  answer_.Json(error.status, nullptr, body);
  answer_.Record("", error.status, false);
}

void FilesCall::Succeed(absl::string_view body) {
  answer_.Json(200, nullptr, body);
  answer_.Record("", 200, false, fault_);
}

void FilesCall::Succeed(const json::object& body) { Succeed(json::serialize(body)); }

void FilesCall::SucceedWith(absl::string_view content_type, absl::string_view body) {
  answer_.StartHead(200, nullptr);
  answer_.FinishBody(content_type, body);
  answer_.Record("", 200, false, fault_);
}

void FilesCall::SucceedList(const json::array& all) {
  ListQuery list;
  if (std::optional<OpenAiError> error = ParseListQuery(route_.query, list)) {
    Fail(*error);
    return;
  }
  Succeed(InputItemsPage(all, list.ascending, list.limit, list.after));
}

const UploadSink* FilesCall::Upload(std::string& error) {
  const UploadSink* upload = answer_.request().upload;
  if (upload == nullptr) {
    const absl::string_view type = answer_.request().content_type;
    const std::optional<std::string> boundary = MultipartBoundary(type);
    if (!boundary.has_value()) {
      error = absl::StrCat("Invalid Content-Type header (", type,
                           "), expected multipart/form-data with a boundary.");
      return nullptr;
    }
    UploadLimits limits;
    limits.keep_bytes = state_.config().files_keep_bytes;
    parsed_.emplace(*boundary, limits);
    parsed_->Feed(body());
    parsed_->Finish();
    upload = &*parsed_;
  }
  if (!upload->ok()) {
    error = upload->error();
    return nullptr;
  }
  return upload;
}

void FilesCall::LogUpload(const UploadSink& upload, absl::string_view deployment) {
  const absl::string_view target = answer_.request().target;
  const absl::string_view path = target.substr(0, std::min(target.find('?'), size_t{256}));
  for (const UploadedFile& file : upload.files()) {
    UploadEntry entry;
    entry.path = std::string(path);
    entry.field = file.field.substr(0, 256);
    entry.filename = file.filename.substr(0, 256);
    entry.bytes = file.bytes;
    entry.sha256 = file.sha256;
    entry.deployment = std::string(deployment);
    apis().uploads().Add(std::move(entry));
  }
}

std::string NewHexId(absl::string_view prefix, int digits) {
  std::string id(prefix);
  AppendRandomHex(id, digits);
  return id;
}

std::string NewAlphanumericId(absl::string_view prefix, int count) {
  std::string id(prefix);
  AppendRandomId(id, count);
  return id;
}

OpenAiError NotFound(absl::string_view message) {
  OpenAiError error;
  error.status = 404;
  error.message = std::string(message);
  return error;
}

OpenAiError FileNotFound(absl::string_view id) {
  OpenAiError error = NotFound(absl::StrCat("No such File object: ", id));
  error.param = "id";
  return error;
}

OpenAiError BadRequest(absl::string_view message, absl::string_view param, absl::string_view code) {
  OpenAiError error;
  error.message = std::string(message);
  error.param = std::string(param);
  error.code = std::string(code);
  return error;
}

std::optional<OpenAiError> ParseObject(absl::string_view body, json::object& object) {
  boost::system::error_code ec;
  json::value parsed = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !parsed.is_object()) {
    return UnparsableBody();
  }
  object = std::move(parsed.get_object());
  return std::nullopt;
}

std::optional<OpenAiError> ReadString(const json::object& object, absl::string_view key,
                                      bool required, std::string& value) {
  const json::value* found = object.if_contains(json::string_view(key.data(), key.size()));
  if (found == nullptr || (found->is_null() && !required)) {
    if (required) {
      return MissingParameter(key);
    }
    return std::nullopt;
  }
  if (!found->is_string()) {
    return InvalidType(key, "a string", *found);
  }
  value = std::string(found->get_string());
  return std::nullopt;
}

bool SplitCollectionPath(absl::string_view path, CollectionPath& parts) {
  parts = CollectionPath{};
  if (path.empty()) {
    return true;
  }
  if (path.front() != '/') {
    return false;
  }
  std::vector<absl::string_view> segments = absl::StrSplit(path.substr(1), '/');
  if (segments.size() > 4) {
    return false;
  }
  for (const absl::string_view segment : segments) {
    if (segment.empty()) {
      return false;
    }
  }
  absl::string_view* slots[] = {&parts.id, &parts.sub, &parts.sub_id, &parts.verb};
  for (size_t i = 0; i < segments.size(); ++i) {
    *slots[i] = segments[i];
  }
  return true;
}

}  // namespace spillway::mock
