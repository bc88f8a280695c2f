// See files_store.h. Costs are rough (ids, names, kept contents, a fixed overhead): they bound
// memory, they do not account for it exactly.
#include "tests/mock_aoai/files_store.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

constexpr size_t kOverhead = 256;

size_t JsonCost(const boost::json::value& value) {
  return value.is_null() ? 0 : boost::json::serialize(value).size();
}

}  // namespace

size_t FileRecord::Cost() const {
  return kOverhead + id.size() + filename.size() + purpose.size() + sha256.size() +
         (content != nullptr ? content->size() : 0);
}

size_t BatchRecord::Cost() const {
  return kOverhead + id.size() + endpoint.size() + input_file_id.size() + JsonCost(metadata);
}

size_t VectorStoreRecord::Cost() const {
  size_t cost = kOverhead + id.size() + JsonCost(name) + JsonCost(metadata) +
                JsonCost(expires_after) + file_batches.size() * 64;
  for (const VectorStoreFile& file : files) {
    cost += 64 + file.file_id.size() + JsonCost(file.attributes);
  }
  return cost;
}

const VectorStoreFile* VectorStoreRecord::FindFile(absl::string_view file_id) const {
  const auto it = std::find_if(files.begin(), files.end(), [&](const VectorStoreFile& file) {
    return file.file_id == file_id;
  });
  return it == files.end() ? nullptr : &*it;
}

bool VectorStoreRecord::AddFile(VectorStoreFile file) {
  if (FindFile(file.file_id) != nullptr) {
    return true;
  }
  if (files.size() >= kMaxFiles) {
    return false;
  }
  files.push_back(std::move(file));
  return true;
}

uint64_t VectorStoreRecord::UsageBytes() const {
  uint64_t bytes = 0;
  for (const VectorStoreFile& file : files) {
    bytes += file.usage_bytes;
  }
  return bytes;
}

void UploadLog::Add(UploadEntry entry) {
  absl::MutexLock lock(&mu_);
  if (entries_.size() == kCapacity) {
    entries_.pop_front();
  }
  entries_.push_back(std::move(entry));
  ++total_;
}

void UploadLog::AppendJson(std::string& out) {
  absl::MutexLock lock(&mu_);
  out += "\"uploads\":[";
  bool first = true;
  for (const UploadEntry& entry : entries_) {
    out += first ? "{\"path\":" : ",{\"path\":";
    first = false;
    AppendJsonString(out, entry.path);
    out += ",\"field\":";
    AppendJsonString(out, entry.field);
    out += ",\"filename\":";
    AppendJsonString(out, entry.filename);
    absl::StrAppend(&out, ",\"bytes\":", entry.bytes, ",\"sha256\":\"", entry.sha256,
                    "\",\"deployment\":");
    AppendJsonString(out, entry.deployment);
    out += '}';
  }
  absl::StrAppend(&out, "],\"uploads_total\":", total_);
}

void UploadLog::Clear() {
  absl::MutexLock lock(&mu_);
  entries_.clear();
  total_ = 0;
}

FilesApiState::FilesApiState(const MockConfig& config)
    : files_(config.files_capacity, config.files_byte_capacity),
      batches_(config.batches_capacity, size_t{64} << 20),
      vector_stores_(config.vector_stores_capacity, size_t{256} << 20) {}

void FilesApiState::Clear() {
  files_.Clear();
  batches_.Clear();
  vector_stores_.Clear();
  uploads_.Clear();
}

void FilesApiState::AppendStatsJson(std::string& out) {
  absl::StrAppend(&out, "\"files\":{\"stored\":", files_.size(), ",\"evicted\":", files_.evicted(),
                  ",\"bytes\":", files_.bytes(), "},\"batches\":{\"stored\":", batches_.size(),
                  ",\"evicted\":", batches_.evicted(),
                  "},\"vector_stores\":{\"stored\":", vector_stores_.size(),
                  ",\"evicted\":", vector_stores_.evicted(), "},");
  uploads_.AppendJson(out);
}

}  // namespace spillway::mock
