// See multipart_field.h. Each Scan resumes where the last stopped (a part's headers, or the
// search for its end), so a large file part before the field costs one pass.
#include "dataplane/routing/multipart_field.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace spillway {
namespace {

constexpr std::size_t kMaxBoundary = 70;
constexpr std::size_t kMaxPartHeaders = 16 * 1024;

// A parameter's value in a header like `form-data; name="model"`, unquoted.
std::optional<absl::string_view> Parameter(absl::string_view header, absl::string_view name) {
  for (absl::string_view piece : absl::StrSplit(header, ';')) {
    piece = absl::StripAsciiWhitespace(piece);
    const std::size_t equals = piece.find('=');
    if (equals == absl::string_view::npos ||
        !absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(piece.substr(0, equals)), name)) {
      continue;
    }
    absl::string_view value = absl::StripAsciiWhitespace(piece.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::string> MultipartBoundary(absl::string_view content_type) {
  const std::size_t semicolon = content_type.find(';');
  if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(content_type.substr(0, semicolon)),
                              "multipart/form-data")) {
    return absl::InvalidArgumentError(absl::StrCat("Content-Type '", content_type.substr(0, 100),
                                                   "' is not multipart/form-data"));
  }
  const std::optional<absl::string_view> boundary =
      semicolon == absl::string_view::npos
          ? std::nullopt
          : Parameter(content_type.substr(semicolon + 1), "boundary");
  if (!boundary.has_value() || boundary->empty() || boundary->size() > kMaxBoundary ||
      boundary->find_first_of("\r\n") != absl::string_view::npos) {
    return absl::InvalidArgumentError("multipart/form-data needs a boundary of 1 to 70 characters");
  }
  return std::string(*boundary);
}

MultipartFieldFinder::MultipartFieldFinder(absl::string_view boundary, absl::string_view field)
    : delimiter_(absl::StrCat("\r\n--", boundary)), field_(field) {}

bool MultipartFieldFinder::NamesField(absl::string_view headers) const {
  for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
    const std::size_t colon = line.find(':');
    if (colon == absl::string_view::npos ||
        !absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(line.substr(0, colon)),
                                "content-disposition")) {
      continue;
    }
    const absl::string_view value = line.substr(colon + 1);
    return Parameter(value, "name") == absl::string_view(field_) &&
           !Parameter(value, "filename").has_value();
  }
  return false;
}

absl::StatusOr<std::optional<MultipartFieldFinder::Found>> MultipartFieldFinder::Scan(
    absl::string_view body) {
  // The first part starts with the delimiter without its CRLF.
  const absl::string_view opening = absl::string_view(delimiter_).substr(2);
  for (;;) {
    if (!in_content_) {
      // "--boundary" then "\r\n" (another part) or "--" (the end), then the part's headers.
      const absl::string_view rest = body.substr(part_start_);
      if (rest.size() < opening.size() + 2) {
        return std::nullopt;
      }
      if (!absl::StartsWith(rest, opening)) {
        return absl::InvalidArgumentError("multipart body does not start with its boundary");
      }
      const absl::string_view after = rest.substr(opening.size(), 2);
      if (after == "--") {
        return absl::NotFoundError(absl::StrCat("multipart body has no \"", field_, "\" field"));
      }
      if (after != "\r\n") {
        return absl::InvalidArgumentError("multipart boundary line is malformed");
      }
      const std::size_t headers_start = part_start_ + opening.size() + 2;
      const std::size_t headers_end = body.find("\r\n\r\n", headers_start);
      if (headers_end == absl::string_view::npos) {
        if (body.size() - headers_start > kMaxPartHeaders) {
          return absl::InvalidArgumentError("a multipart part's headers are too long");
        }
        return std::nullopt;
      }
      is_field_ = NamesField(body.substr(headers_start, headers_end - headers_start));
      content_start_ = headers_end + 4;
      search_from_ = content_start_;
      in_content_ = true;
    }
    const std::size_t end = body.find(delimiter_, search_from_);
    if (end == absl::string_view::npos) {
      // The delimiter may straddle the end: look again from just before it.
      search_from_ =
          std::max(content_start_, body.size() - std::min(body.size(), delimiter_.size() - 1));
      return std::nullopt;
    }
    if (is_field_) {
      return Found{content_start_, end - content_start_};
    }
    part_start_ = end + 2;  // the next part's "--boundary"
    in_content_ = false;
  }
}

}  // namespace spillway
