// The Files API (files_api.h): uploads by multipart/form-data, their objects, and their content
// while it was small enough to keep (--files-keep-bytes).
#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/mock_aoai/files_api.h"
#include "tests/mock_aoai/list_query.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

// The purposes Azure OpenAI takes on upload.
constexpr absl::string_view kPurposes[] = {"assistants", "batch",     "fine-tune",
                                           "vision",     "user_data", "evals"};

json::object FileObject(const FileRecord& file) {
  json::object object;
  object["id"] = Js(file.id);
  object["object"] = "file";
  object["bytes"] = file.bytes;
  object["created_at"] = file.created_at;
  object["filename"] = Js(file.filename);
  object["purpose"] = Js(file.purpose);
  object["status"] = "processed";
  return object;
}

void Create(FilesCall& call) {
  std::string error;
  const UploadSink* upload = call.Upload(error);
  if (upload == nullptr) {
    call.Fail(BadRequest(error));
    return;
  }
  const std::optional<absl::string_view> purpose = upload->Field("purpose");
  if (!purpose.has_value()) {
    call.Fail(MissingParameter("purpose"));
    return;
  }
  if (std::find(std::begin(kPurposes), std::end(kPurposes), *purpose) == std::end(kPurposes)) {
    call.Fail(BadRequest(absl::StrCat("'", *purpose, "' is not one of ['",
                                      absl::StrJoin(kPurposes, "', '"), "'] - 'purpose'"),
                         "purpose", "invalid_value"));
    return;
  }
  const UploadedFile* file = upload->File("file");
  if (file == nullptr) {
    call.Fail(MissingParameter("file"));
    return;
  }
  FileRecord record;
  record.id = NewHexId("file-", 32);
  record.created_at = call.now();
  record.filename = file->filename;
  record.purpose = std::string(*purpose);
  record.bytes = file->bytes;
  record.sha256 = file->sha256;
  record.lines = file->lines;
  if (file->content_kept) {
    record.content = std::make_shared<const std::string>(file->content);
  }
  const json::object object = FileObject(record);
  call.apis().files().Put(std::move(record));
  call.LogUpload(*upload, "");
  call.Succeed(object);
}

void List(FilesCall& call) {
  const std::optional<absl::string_view> purpose = QueryValue(call.route().query, "purpose");
  json::array all;
  for (const FileRecord& file : call.apis().files().All([&](const FileRecord& file) {
         return !purpose.has_value() || file.purpose == *purpose;
       })) {
    all.push_back(FileObject(file));
  }
  call.SucceedList(all);
}

void Retrieve(FilesCall& call, absl::string_view id) {
  const std::optional<FileRecord> file = call.apis().files().Get(id);
  if (!file.has_value()) {
    call.Fail(FileNotFound(id));
    return;
  }
  call.Succeed(FileObject(*file));
}

void Delete(FilesCall& call, absl::string_view id) {
  if (!call.apis().files().Erase(id)) {
    call.Fail(FileNotFound(id));
    return;
  }
  call.Succeed(json::object{{"id", Js(id)}, {"object", "file"}, {"deleted", true}});
}

void Content(FilesCall& call, absl::string_view id) {
  const std::optional<FileRecord> file = call.apis().files().Get(id);
  if (!file.has_value()) {
    call.Fail(FileNotFound(id));
    return;
  }
  if (file->content == nullptr) {
    // The mock's own limit, worded like the service's refusal to download some purposes.
    call.Fail(BadRequest(absl::StrCat(
        "Not allowed to download this file: the mock keeps the "
        "content of files up to ",
        call.state().config().files_keep_bytes, " bytes, and this one has ", file->bytes, ".")));
    return;
  }
  call.SucceedWith("application/octet-stream", *file->content);
}

}  // namespace

void ServeFiles(FilesCall& call) {
  const absl::string_view method = call.answer().request().method;
  CollectionPath path;
  if (!SplitCollectionPath(call.route().collection_path, path) || !path.sub_id.empty() ||
      (!path.sub.empty() && (path.sub != "content" || method != "GET"))) {
    call.answer().Fail(404, "", "404", "Resource not found");
    return;
  }
  if (path.id.empty() && method == "POST") {
    if (!call.TakeFault("Files_Upload")) Create(call);
  } else if (path.id.empty() && method == "GET") {
    if (!call.TakeFault("Files_List")) List(call);
  } else if (!path.sub.empty()) {
    if (!call.TakeFault("Files_GetContent")) Content(call, path.id);
  } else if (!path.id.empty() && method == "GET") {
    if (!call.TakeFault("Files_Get")) Retrieve(call, path.id);
  } else if (!path.id.empty() && method == "DELETE") {
    if (!call.TakeFault("Files_Delete")) Delete(call, path.id);
  } else {
    call.answer().Fail(404, "", "404", "Resource not found");
  }
}

}  // namespace spillway::mock
