// The Files, Batch and Vector stores APIs and the multipart audio and image uploads of one mock,
// on /openai/v1/... and on /openai/...?api-version= (routes in files_routes.h):
//   files          POST (multipart: purpose, file), GET list, GET/DELETE {id}, GET {id}/content
//   batches        POST {input_file_id, endpoint, completion_window}, GET list, GET {id},
//                  POST {id}/cancel
//   vector_stores  POST, GET list, GET/POST/DELETE {id}; {id}/files: POST, GET list,
//                  GET/DELETE {file_id}; {id}/file_batches: POST, GET {batch_id}
//   media          POST audio/transcriptions|translations, images/edits (multipart), by the
//                  deployment in the path or the form's `model`
// Files, batches and vector stores belong to no deployment (auth and the faults given no
// deployment apply, never a limiter) and answer OpenAI-shaped errors; media uploads are served
// like chat completions (DeploymentNotFound, faults and limits of their deployment).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/files_store.h"
#include "tests/mock_aoai/list_query.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/openai_error.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/upload.h"

namespace spillway::mock {

class FilesApiHandler {
 public:
  explicit FilesApiHandler(MockState& state) : state_(state) {}

  // A request routed as kFiles, kBatches, kVectorStores or kMedia.
  void Handle(const Route& route, ApiAnswer& answer);

 private:
  MockState& state_;
};

// One request to the files APIs, with the steps their answers share.
class FilesCall {
 public:
  FilesCall(MockState& state, const Route& route, ApiAnswer& answer)
      : state_(state), route_(route), answer_(answer) {}

  MockState& state() { return state_; }
  FilesApiState& apis() { return state_.files_apis(); }
  const Route& route() const { return route_; }
  ApiAnswer& answer() { return answer_; }
  absl::string_view body() const { return answer_.request().body; }
  int64_t now() const;  // Unix seconds of the request's arrival

  // Before any lookup (an outage answers whatever the id); true when the fault was the answer.
  bool TakeFault(absl::string_view operation);
  // An OpenAI-shaped error, recorded in the stats.
  void Fail(const OpenAiError& error);
  // 200 with a JSON body, recorded in the stats.
  void Succeed(absl::string_view body);
  void Succeed(const boost::json::object& body);
  // 200 with another kind of body (a file's content).
  void SucceedWith(absl::string_view content_type, absl::string_view body);
  // A page of `all` (oldest first) as ?limit, order and after ask.
  void SucceedList(const boost::json::array& all);
  // The request's multipart form: streamed in by the session, or parsed from the body here.
  // Null, with `error` set, when it is not a well-formed multipart/form-data body.
  const UploadSink* Upload(std::string& error);
  // Adds every file part of the upload to the stats' upload log.
  void LogUpload(const UploadSink& upload, absl::string_view deployment);

 private:
  MockState& state_;
  const Route& route_;
  ApiAnswer& answer_;
  absl::string_view fault_;
  std::optional<UploadSink> parsed_;
};

// "file-<32 hex>" (Azure's file ids), "batch_<32 hex>", "vs_<24 alphanumerics>"...
std::string NewHexId(absl::string_view prefix, int digits);
std::string NewAlphanumericId(absl::string_view prefix, int count);

// 404s and 400s in the service's words.
OpenAiError FileNotFound(absl::string_view id);
OpenAiError NotFound(absl::string_view message);
OpenAiError BadRequest(absl::string_view message, absl::string_view param = "",
                       absl::string_view code = "");
// The body as a JSON object, or the 400 to answer.
std::optional<OpenAiError> ParseObject(absl::string_view body, boost::json::object& object);
// The string at `key` (required or optional), or the 400 to answer.
std::optional<OpenAiError> ReadString(const boost::json::object& object, absl::string_view key,
                                      bool required, std::string& value);

// Each collection's requests (files_handler.cc, batches_handler.cc, vector_stores_handler.cc,
// media_handler.cc).
void ServeFiles(FilesCall& call);
void ServeBatches(FilesCall& call);
void ServeVectorStores(FilesCall& call);
void ServeMedia(FilesCall& call);

// Splits a collection path "/{id}[/{sub}[/{sub_id}[/{verb}]]]" into its segments; false when it
// has empty segments or more than four.
struct CollectionPath {
  absl::string_view id;
  absl::string_view sub;
  absl::string_view sub_id;
  absl::string_view verb;
};
bool SplitCollectionPath(absl::string_view path, CollectionPath& parts);

}  // namespace spillway::mock
