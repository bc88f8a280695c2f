// See http_head.h.
#include "dataplane/http_head.h"

#include <boost/beast/http/status.hpp>

#include "absl/strings/str_cat.h"

namespace spillway {

void AppendHeaderLine(std::string& head, absl::string_view name, absl::string_view value) {
  absl::StrAppend(&head, name, ": ", value, kCrlf);
}

void WriteRequestHead(const boost::beast::http::request_header<>& request, std::string& head) {
  head.clear();
  absl::StrAppend(&head, View(request.method_string()), " ", View(request.target()),
                  " HTTP/1.1\r\n");
  for (const auto& field : request) {
    AppendHeaderLine(head, View(field.name_string()), View(field.value()));
  }
  head += "\r\n";
}

void AppendStatusLine(std::string& head, unsigned status, absl::string_view reason) {
  if (reason.empty()) {
    reason =
        View(boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status)));
  }
  absl::StrAppend(&head, "HTTP/1.1 ", status, " ", reason, kCrlf);
}

void WriteChunkSizeLine(std::size_t size, std::string& line) {
  line.clear();
  absl::StrAppend(&line, absl::Hex(size), kCrlf);
}

}  // namespace spillway
