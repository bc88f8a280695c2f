// See upload.h. Hashing is OpenSSL's EVP SHA-256, one context per upload, reset per file part.
#include "tests/mock_aoai/upload.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace spillway::mock {

UploadSink::UploadSink(absl::string_view boundary, UploadLimits limits)
    : limits_(limits), parser_(boundary, *this), hash_(EVP_MD_CTX_new()) {}

UploadSink::~UploadSink() { EVP_MD_CTX_free(hash_); }

void UploadSink::Refuse(std::string why) {
  if (error_.empty()) {
    error_ = std::move(why);
  }
}

void UploadSink::Feed(absl::string_view data) {
  body_bytes_ += data.size();
  if (!ok()) {
    return;  // the rest of the body is read and dropped; the 400 comes at the end
  }
  if (!parser_.Feed(data)) {
    Refuse(parser_.error());
  }
}

void UploadSink::Finish() {
  if (ok() && !parser_.Finish()) {
    Refuse(parser_.error());
  }
}

std::optional<absl::string_view> UploadSink::Field(absl::string_view name) const {
  for (const auto& [key, value] : fields_) {
    if (key == name) {
      return value;
    }
  }
  return std::nullopt;
}

const UploadedFile* UploadSink::File(absl::string_view name) const {
  for (const UploadedFile& file : files_) {
    if (file.field == name) {
      return &file;
    }
  }
  return nullptr;
}

void UploadSink::OnPartBegin(const MultipartPartHeaders& headers) {
  part_ = Part::kNone;
  if (!ok()) {
    return;
  }
  if (!headers.has_filename) {
    if (fields_.size() == limits_.max_fields) {
      Refuse(absl::StrCat("The form has more than ", limits_.max_fields, " fields."));
      return;
    }
    fields_.emplace_back(headers.name, "");
    part_ = Part::kField;
    return;
  }
  if (files_.size() == limits_.max_files) {
    Refuse(absl::StrCat("The form has more than ", limits_.max_files, " files."));
    return;
  }
  UploadedFile& file = files_.emplace_back();
  file.field = headers.name;
  file.filename = headers.filename;
  file.content_type = headers.content_type;
  if (hash_ == nullptr || EVP_DigestInit_ex(hash_, EVP_sha256(), nullptr) != 1) {
    Refuse("SHA-256 is unavailable.");
    return;
  }
  line_has_text_ = false;
  part_ = Part::kFile;
}

void UploadSink::OnPartData(absl::string_view data) {
  if (part_ == Part::kField) {
    std::string& value = fields_.back().second;
    if (value.size() + data.size() > limits_.field_bytes) {
      Refuse(absl::StrCat("The form field '", fields_.back().first, "' exceeds ",
                          limits_.field_bytes, " bytes."));
      part_ = Part::kNone;
      return;
    }
    value.append(data.data(), data.size());
    return;
  }
  if (part_ != Part::kFile) {
    return;
  }
  UploadedFile& file = files_.back();
  file.bytes += data.size();
  EVP_DigestUpdate(hash_, data.data(), data.size());
  for (const char c : data) {
    if (c == '\n') {
      file.lines += line_has_text_ ? 1 : 0;
      line_has_text_ = false;
    } else if (!absl::ascii_isspace(static_cast<unsigned char>(c))) {
      line_has_text_ = true;
    }
  }
  if (file.content_kept && file.bytes <= limits_.keep_bytes) {
    file.content.append(data.data(), data.size());
  } else if (file.content_kept) {
    file.content_kept = false;
    std::string().swap(file.content);  // give the memory back now, not at the end
  }
}

void UploadSink::OnPartEnd() {
  if (part_ == Part::kFile) {
    UploadedFile& file = files_.back();
    file.lines += line_has_text_ ? 1 : 0;  // a last line without its newline
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned int size = 0;
    EVP_DigestFinal_ex(hash_, digest, &size);
    file.sha256 =
        absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), size));
  }
  part_ = Part::kNone;
}

}  // namespace spillway::mock
