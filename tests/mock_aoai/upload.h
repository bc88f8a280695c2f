// What a multipart/form-data upload carried, gathered while it streams in: the form's small
// fields, and per file part its size, SHA-256 and line count, its content kept only when small.
// Nothing else of the body stays in memory, so uploads of any size cost the mock a few KiB.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/multipart.h"

namespace spillway::mock {

struct UploadedFile {
  std::string field;  // the part's name: "file", "image", "image[]", "mask"...
  std::string filename;
  std::string content_type;
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex
  uint64_t lines = 0;  // lines holding more than whitespace (a batch file's requests)
  // The whole content while it is at most UploadLimits::keep_bytes; past that it is dropped and
  // content_kept turns false.
  std::string content;
  bool content_kept = true;
};

struct UploadLimits {
  size_t keep_bytes = size_t{1} << 20;  // a file part's content kept up to this
  size_t field_bytes = 64 * 1024;       // a plain field's value
  size_t max_fields = 64;
  size_t max_files = 16;
};

class UploadSink final : public MultipartHandler {
 public:
  UploadSink(absl::string_view boundary, UploadLimits limits = {});
  ~UploadSink() override;
  UploadSink(const UploadSink&) = delete;
  UploadSink& operator=(const UploadSink&) = delete;

  // A piece of the body, as it arrives; ignored once the form is found malformed.
  void Feed(absl::string_view data);
  // After the body's last byte.
  void Finish();

  bool ok() const { return error_.empty(); }
  // Why the form was refused (malformed, over a bound), for a 400.
  const std::string& error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }
  // The first plain field named `name`.
  std::optional<absl::string_view> Field(absl::string_view name) const;
  const std::vector<UploadedFile>& files() const { return files_; }
  // The first file part named `name`, or null.
  const UploadedFile* File(absl::string_view name) const;

  void OnPartBegin(const MultipartPartHeaders& headers) override;
  void OnPartData(absl::string_view data) override;
  void OnPartEnd() override;

 private:
  void Refuse(std::string why);

  const UploadLimits limits_;
  MultipartParser parser_;
  uint64_t body_bytes_ = 0;
  std::vector<std::pair<std::string, std::string>> fields_;
  std::vector<UploadedFile> files_;
  // The part being read: a field (value appended to fields_.back()) or a file (files_.back()).
  enum class Part { kNone, kField, kFile } part_ = Part::kNone;
  EVP_MD_CTX* hash_ = nullptr;
  bool line_has_text_ = false;
  std::string error_;
};

}  // namespace spillway::mock
