// The state of the Files, Batch and Vector stores APIs of one mock (one Azure resource: ids made
// here are unknown elsewhere), each store bounded by count and evicting the oldest first, and a
// log of the last uploads (their size and SHA-256) for tests to prove one arrived whole.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/config.h"
#include "tests/mock_aoai/id_store.h"

namespace spillway::mock {

struct FileRecord {
  std::string id;  // "file-<32 hex>", as Azure's
  int64_t created_at = 0;
  std::string filename;
  std::string purpose;
  uint64_t bytes = 0;
  std::string sha256;
  uint64_t lines = 0;                          // lines with text: a batch input's requests
  std::shared_ptr<const std::string> content;  // null when it was over the keep bound

  size_t Cost() const;
};

struct BatchRecord {
  std::string id;  // "batch_<32 hex>"
  absl::Time created;
  std::string endpoint;
  std::string input_file_id;
  std::string completion_window;
  boost::json::value metadata;  // an object or null
  int64_t total = 0;            // the input file's requests
  std::optional<absl::Time> cancelled;

  size_t Cost() const;
};

struct VectorStoreFile {
  std::string file_id;
  int64_t created_at = 0;
  uint64_t usage_bytes = 0;
  boost::json::value attributes;  // an object or null
};

struct VectorStoreFileBatch {
  std::string id;  // "vsfb_<32 hex>"
  int64_t created_at = 0;
  int64_t files = 0;
};

struct VectorStoreRecord {
  static constexpr size_t kMaxFiles = 10'000;
  static constexpr size_t kMaxFileBatches = 100;  // the newest kept

  std::string id;  // "vs_<24 alphanumerics>"
  int64_t created_at = 0;
  int64_t last_active_at = 0;
  boost::json::value name;  // a string or null
  boost::json::value metadata;
  boost::json::value expires_after;  // as given, or null
  std::vector<VectorStoreFile> files;
  std::deque<VectorStoreFileBatch> file_batches;

  size_t Cost() const;
  const VectorStoreFile* FindFile(absl::string_view file_id) const;
  // Adds the file unless it is there already; false when the store is full.
  bool AddFile(VectorStoreFile file);
  uint64_t UsageBytes() const;
};

// One file part received: which endpoint, how much, its digest, and the deployment it was for
// ("" on /files).
struct UploadEntry {
  std::string path;
  std::string field;
  std::string filename;
  uint64_t bytes = 0;
  std::string sha256;
  std::string deployment;
};

class UploadLog {
 public:
  static constexpr size_t kCapacity = 100;

  void Add(UploadEntry entry);
  // "uploads":[{"path":...,"field":...,"filename":...,"bytes":N,"sha256":"hex",
  // "deployment":"..."}] (oldest first),"uploads_total":N
  void AppendJson(std::string& out);
  void Clear();

 private:
  absl::Mutex mu_;
  std::deque<UploadEntry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

class FilesApiState {
 public:
  explicit FilesApiState(const MockConfig& config);

  IdStore<FileRecord>& files() { return files_; }
  IdStore<BatchRecord>& batches() { return batches_; }
  IdStore<VectorStoreRecord>& vector_stores() { return vector_stores_; }
  UploadLog& uploads() { return uploads_; }

  // POST /mock/reset.
  void Clear();
  // For /mock/stats: "files":{"stored":N,"evicted":N,"bytes":N} (bytes: what
  // the store charges them, kept contents included),
  // "batches":{"stored":N,"evicted":N},"vector_stores":{"stored":N,"evicted":N}, and the
  // upload log's fields; no braces around them.
  void AppendStatsJson(std::string& out);

 private:
  IdStore<FileRecord> files_;
  IdStore<BatchRecord> batches_;
  IdStore<VectorStoreRecord> vector_stores_;
  UploadLog uploads_;
};

}  // namespace spillway::mock
