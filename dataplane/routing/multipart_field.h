// Finds one plain field of a multipart/form-data body (RFC 7578) as the body arrives: the
// "model" of an upload on /openai/v1 (audio, image edits), which names the route. The bytes
// before it are held by the caller (bounded); the value's place in them is reported so it can
// be rewritten to each backend's deployment.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway {

// The boundary parameter of a multipart/form-data Content-Type (1..70 characters, RFC 2046),
// unquoted; InvalidArgument naming what is wrong otherwise.
absl::StatusOr<std::string> MultipartBoundary(absl::string_view content_type);

class MultipartFieldFinder {
 public:
  MultipartFieldFinder(absl::string_view boundary, absl::string_view field);

  // Where the field's value lies in the body fed so far.
  struct Found {
    std::size_t offset = 0;
    std::size_t size = 0;
  };

  // Looks at `body`, the whole body received so far (each call passes a longer prefix of the
  // same body). Returns the field once its value is complete; InvalidArgument when the body
  // is not well-formed multipart, NotFound when it ended without the field; nullopt while
  // more is needed.
  absl::StatusOr<std::optional<Found>> Scan(absl::string_view body);

 private:
  // A part's headers: whether they name `field_` as a plain (non-file) field.
  bool NamesField(absl::string_view headers) const;

  std::string delimiter_;  // "\r\n--" + boundary: ends a part's content
  std::string field_;
  std::size_t part_start_ = 0;  // where the current part's "--boundary" line starts
  bool in_content_ = false;     // past the current part's headers
  bool is_field_ = false;       // the current part is the wanted field
  std::size_t content_start_ = 0;
  std::size_t search_from_ = 0;  // the delimiter is not before this
};

}  // namespace spillway
