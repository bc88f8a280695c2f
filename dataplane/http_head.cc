// See http_head.h.
#include "dataplane/http_head.h"

#include <algorithm>
#include <boost/beast/http/status.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace spillway {

void AppendPieces(std::string& out, std::initializer_list<absl::string_view> pieces) {
  std::size_t total = out.size();
  for (absl::string_view piece : pieces) {
    total += piece.size();
  }
  if (total > out.capacity()) {
    out.reserve(std::max(total, 2 * out.capacity()));
  }
  for (absl::string_view piece : pieces) {
    out.append(piece.data(), piece.size());
  }
}

void AppendHeaderLine(std::string& head, absl::string_view name, absl::string_view value) {
  AppendPieces(head, {name, ": ", value, kCrlf});
}

void AppendHeaderLine(std::string& head, absl::string_view name, uint64_t value) {
  char digits[absl::numbers_internal::kFastToBufferSize];
  const char* end = absl::numbers_internal::FastIntToBuffer(value, digits);
  AppendPieces(head, {name, ": ", absl::string_view(digits, end - digits), kCrlf});
}

void AppendStatusLine(std::string& head, unsigned status, absl::string_view reason) {
  if (reason.empty()) {
    reason =
        View(boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status)));
  }
  char digits[absl::numbers_internal::kFastToBufferSize];
  const char* end = absl::numbers_internal::FastIntToBuffer(status, digits);
  AppendPieces(head, {"HTTP/1.1 ", absl::string_view(digits, end - digits), " ", reason, kCrlf});
}

void WriteChunkSizeLine(std::size_t size, std::string& line) {
  line.clear();
  absl::StrAppend(&line, absl::Hex(size), kCrlf);
}

}  // namespace spillway
