// The Vector stores API (files_api.h): stores of this mock's files, their files and file
// batches. Indexing is instant here: every store, file and batch is "completed" at once.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/files_api.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

constexpr size_t kMaxFileIds = 500;  // per request, as OpenAI's

json::object Counts(int64_t completed) {
  return json::object{{"in_progress", 0},
                      {"completed", completed},
                      {"failed", 0},
                      {"cancelled", 0},
                      {"total", completed}};
}

json::object StoreObject(const VectorStoreRecord& store) {
  json::object object;
  object["id"] = Js(store.id);
  object["object"] = "vector_store";
  object["created_at"] = store.created_at;
  object["name"] = store.name;
  object["usage_bytes"] = store.UsageBytes();
  object["file_counts"] = Counts(static_cast<int64_t>(store.files.size()));
  object["status"] = "completed";
  object["expires_after"] = store.expires_after;
  object["expires_at"] = nullptr;
  object["last_active_at"] = store.last_active_at;
  object["metadata"] = store.metadata;
  return object;
}

json::object FileObject(absl::string_view store_id, const VectorStoreFile& file) {
  json::object object;
  object["id"] = Js(file.file_id);
  object["object"] = "vector_store.file";
  object["usage_bytes"] = file.usage_bytes;
  object["created_at"] = file.created_at;
  object["vector_store_id"] = Js(store_id);
  object["status"] = "completed";
  object["last_error"] = nullptr;
  object["chunking_strategy"] = json::object{
      {"type", "static"},
      {"static", json::object{{"max_chunk_size_tokens", 800}, {"chunk_overlap_tokens", 400}}}};
  object["attributes"] = file.attributes;
  return object;
}

json::object BatchObject(absl::string_view store_id, const VectorStoreFileBatch& batch) {
  return json::object{{"id", Js(batch.id)},
                      {"object", "vector_store.file_batch"},
                      {"created_at", batch.created_at},
                      {"vector_store_id", Js(store_id)},
                      {"status", "completed"},
                      {"file_counts", Counts(batch.files)}};
}

OpenAiError StoreNotFound(absl::string_view id) {
  return NotFound(absl::StrCat("No vector store found with id '", id, "'."));
}

// An optional member of `kind` ("object" or "string"), copied into `out` as given (null too).
std::optional<OpenAiError> ReadOptional(const json::object& body, absl::string_view key,
                                        json::kind kind, json::value& out) {
  const json::value* value = body.if_contains(Js(key));
  if (value == nullptr) return std::nullopt;
  if (!value->is_null() && value->kind() != kind) {
    return InvalidType(key, kind == json::kind::object ? "an object" : "a string", *value);
  }
  out = *value;
  return std::nullopt;
}

// The files named by `ids`, each one of this mock's, or the 404 for the first that is not.
std::optional<OpenAiError> FindFiles(FilesCall& call, const std::vector<std::string>& ids,
                                     absl::string_view param, std::vector<VectorStoreFile>& out) {
  for (const std::string& id : ids) {
    const std::optional<FileRecord> file = call.apis().files().Get(id);
    if (!file.has_value()) {
      OpenAiError error = FileNotFound(id);
      error.param = std::string(param);
      return error;
    }
    out.push_back({id, call.now(), file->bytes, nullptr});
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadFileIds(const json::object& body, bool required,
                                       std::vector<std::string>& ids) {
  const json::value* value = body.if_contains("file_ids");
  if (value == nullptr || value->is_null()) {
    return required ? std::optional(MissingParameter("file_ids")) : std::nullopt;
  }
  if (!value->is_array()) return InvalidType("file_ids", "an array", *value);
  if (value->get_array().size() > kMaxFileIds || (required && value->get_array().empty())) {
    return BadRequest(absl::StrCat("'file_ids' must hold 1 to ", kMaxFileIds, " file ids."),
                      "file_ids", "invalid_value");
  }
  for (const json::value& id : value->get_array()) {
    if (!id.is_string()) return InvalidType("file_ids", "an array of strings", *value);
    ids.emplace_back(id.get_string());
  }
  return std::nullopt;
}

// A body that may be empty (SDKs send "{}", curl may send nothing).
std::optional<OpenAiError> ParseBody(absl::string_view body, json::object& object) {
  return body.empty() ? std::nullopt : ParseObject(body, object);
}

// name, metadata and expires_after, which create and modify take.
std::optional<OpenAiError> ReadSettings(const json::object& body, VectorStoreRecord& store) {
  if (auto error = ReadOptional(body, "name", json::kind::string, store.name)) return error;
  if (auto error = ReadOptional(body, "metadata", json::kind::object, store.metadata)) {
    return error;
  }
  return ReadOptional(body, "expires_after", json::kind::object, store.expires_after);
}

void Create(FilesCall& call) {
  json::object body;
  VectorStoreRecord store;
  std::vector<std::string> ids;
  std::optional<OpenAiError> error = ParseBody(call.body(), body);
  if (!error) error = ReadSettings(body, store);
  if (!error) error = ReadFileIds(body, false, ids);
  if (!error) error = FindFiles(call, ids, "file_ids", store.files);
  if (error) {
    call.Fail(*error);
    return;
  }
  store.id = NewAlphanumericId("vs_", 24);
  store.created_at = store.last_active_at = call.now();
  const json::object object = StoreObject(store);
  call.apis().vector_stores().Put(std::move(store));
  call.Succeed(object);
}

void Retrieve(FilesCall& call, absl::string_view id) {
  const std::optional<VectorStoreRecord> store = call.apis().vector_stores().Get(id);
  if (!store.has_value()) {
    call.Fail(StoreNotFound(id));
    return;
  }
  call.Succeed(StoreObject(*store));
}

void Modify(FilesCall& call, absl::string_view id) {
  json::object body;
  VectorStoreRecord settings;
  std::optional<OpenAiError> error = ParseBody(call.body(), body);
  if (!error) error = ReadSettings(body, settings);
  if (error) {
    call.Fail(*error);
    return;
  }
  const std::optional<VectorStoreRecord> store =
      call.apis().vector_stores().Update(id, [&](VectorStoreRecord& store) {
        if (body.contains("name")) store.name = settings.name;
        if (body.contains("metadata")) store.metadata = settings.metadata;
        if (body.contains("expires_after")) store.expires_after = settings.expires_after;
        store.last_active_at = call.now();
      });
  if (!store.has_value()) {
    call.Fail(StoreNotFound(id));
    return;
  }
  call.Succeed(StoreObject(*store));
}

void Delete(FilesCall& call, absl::string_view id) {
  if (!call.apis().vector_stores().Erase(id)) {
    call.Fail(StoreNotFound(id));
    return;
  }
  call.Succeed(json::object{{"id", Js(id)}, {"object", "vector_store.deleted"}, {"deleted", true}});
}

void List(FilesCall& call) {
  json::array all;
  for (const VectorStoreRecord& store : call.apis().vector_stores().All()) {
    all.push_back(StoreObject(store));
  }
  call.SucceedList(all);
}

// Adds `files` (and, for a file batch, `batch`) to store `id`; false when the store is full.
std::optional<VectorStoreRecord> AddFiles(FilesCall& call, absl::string_view id,
                                          std::vector<VectorStoreFile> files,
                                          const VectorStoreFileBatch* batch, bool& full) {
  return call.apis().vector_stores().Update(id, [&](VectorStoreRecord& store) {
    for (VectorStoreFile& file : files) {
      full = full || !store.AddFile(std::move(file));
    }
    if (batch != nullptr && !full) {
      store.file_batches.push_back(*batch);
      if (store.file_batches.size() > VectorStoreRecord::kMaxFileBatches) {
        store.file_batches.pop_front();
      }
    }
    store.last_active_at = call.now();
  });
}

// POST .../files ({"file_id"}) or .../file_batches ({"file_ids"}).
void AddToStore(FilesCall& call, absl::string_view id, bool batch) {
  json::object body;
  std::vector<std::string> ids;
  std::optional<OpenAiError> error = ParseObject(call.body(), body);
  std::string file_id;
  json::value attributes;
  if (!error && batch) error = ReadFileIds(body, true, ids);
  if (!error && !batch && !(error = ReadString(body, "file_id", true, file_id))) {
    ids.push_back(file_id);
    error = ReadOptional(body, "attributes", json::kind::object, attributes);
  }
  if (error) {
    call.Fail(*error);
    return;
  }
  if (!call.apis().vector_stores().Get(id).has_value()) {
    call.Fail(StoreNotFound(id));
    return;
  }
  std::vector<VectorStoreFile> files;
  if (auto missing = FindFiles(call, ids, batch ? "file_ids" : "file_id", files)) {
    call.Fail(*missing);
    return;
  }
  if (!batch) {
    files.front().attributes = attributes;
  }
  const VectorStoreFileBatch made{NewHexId("vsfb_", 32), call.now(),
                                  static_cast<int64_t>(files.size())};
  bool full = false;
  const std::optional<VectorStoreRecord> store =
      AddFiles(call, id, files, batch ? &made : nullptr, full);
  if (!store.has_value()) {
    call.Fail(StoreNotFound(id));  // deleted meanwhile
  } else if (full) {
    call.Fail(BadRequest(
        absl::StrCat("A vector store holds at most ", VectorStoreRecord::kMaxFiles, " files.")));
  } else if (batch) {
    call.Succeed(BatchObject(id, made));
  } else {
    call.Succeed(FileObject(id, *store->FindFile(file_id)));
  }
}

void ListFiles(FilesCall& call, absl::string_view id) {
  const std::optional<VectorStoreRecord> store = call.apis().vector_stores().Get(id);
  if (!store.has_value()) {
    call.Fail(StoreNotFound(id));
    return;
  }
  json::array all;
  for (const VectorStoreFile& file : store->files) {
    all.push_back(FileObject(id, file));
  }
  call.SucceedList(all);
}

void FileInStore(FilesCall& call, absl::string_view id, absl::string_view file_id, bool erase) {
  const std::optional<VectorStoreRecord> store = call.apis().vector_stores().Get(id);
  if (!store.has_value()) {
    call.Fail(StoreNotFound(id));
    return;
  }
  const VectorStoreFile* file = store->FindFile(file_id);
  if (file == nullptr) {
    call.Fail(NotFound(
        absl::StrCat("No file found with id '", file_id, "' in vector store '", id, "'.")));
    return;
  }
  if (!erase) {
    call.Succeed(FileObject(id, *file));
    return;
  }
  call.apis().vector_stores().Update(id, [&](VectorStoreRecord& record) {
    std::erase_if(record.files, [&](const VectorStoreFile& f) { return f.file_id == file_id; });
  });
  call.Succeed(json::object{
      {"id", Js(file_id)}, {"object", "vector_store.file.deleted"}, {"deleted", true}});
}

void RetrieveBatch(FilesCall& call, absl::string_view id, absl::string_view batch_id) {
  const std::optional<VectorStoreRecord> store = call.apis().vector_stores().Get(id);
  if (!store.has_value()) {
    call.Fail(StoreNotFound(id));
    return;
  }
  for (const VectorStoreFileBatch& batch : store->file_batches) {
    if (batch.id == batch_id) {
      call.Succeed(BatchObject(id, batch));
      return;
    }
  }
  call.Fail(NotFound(
      absl::StrCat("No file batch found with id '", batch_id, "' in vector store '", id, "'.")));
}

// Which operation a request asks for (its name for faults), or "" for none.
absl::string_view OperationOf(absl::string_view method, const CollectionPath& path) {
  const bool get = method == "GET";
  const bool post = method == "POST";
  const bool del = method == "DELETE";
  if (!path.verb.empty()) return "";
  if (path.id.empty()) return post ? "VectorStores_Create" : get ? "VectorStores_List" : "";
  if (path.sub.empty()) {
    return get    ? "VectorStores_Get"
           : post ? "VectorStores_Modify"
           : del  ? "VectorStores_Delete"
                  : "";
  }
  if (path.sub == "files") {
    if (path.sub_id.empty())
      return post ? "VectorStoreFiles_Create" : get ? "VectorStoreFiles_List" : "";
    return get ? "VectorStoreFiles_Get" : del ? "VectorStoreFiles_Delete" : "";
  }
  if (path.sub == "file_batches") {
    if (path.sub_id.empty()) return post ? "VectorStoreFileBatches_Create" : "";
    return get ? "VectorStoreFileBatches_Get" : "";
  }
  return "";
}

}  // namespace

void ServeVectorStores(FilesCall& call) {
  const absl::string_view method = call.answer().request().method;
  CollectionPath path;
  const absl::string_view operation =
      SplitCollectionPath(call.route().collection_path, path) ? OperationOf(method, path) : "";
  if (operation.empty()) {
    call.answer().Fail(404, "", "404", "Resource not found");
    return;
  }
  if (call.TakeFault(operation)) {
    return;
  }
  const bool get = method == "GET";
  const bool post = method == "POST";
  if (path.id.empty()) {
    post ? Create(call) : List(call);
  } else if (path.sub.empty()) {
    get ? Retrieve(call, path.id) : post ? Modify(call, path.id) : Delete(call, path.id);
  } else if (path.sub == "files" && path.sub_id.empty()) {
    post ? AddToStore(call, path.id, false) : ListFiles(call, path.id);
  } else if (path.sub == "files") {
    FileInStore(call, path.id, path.sub_id, /*erase=*/!get);
  } else if (path.sub_id.empty()) {
    AddToStore(call, path.id, true);
  } else {
    RetrieveBatch(call, path.id, path.sub_id);
  }
}

}  // namespace spillway::mock
