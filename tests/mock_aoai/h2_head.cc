// See h2_head.h. The heads are the mock's own (http_reply.h), so a small exact parser is enough;
// it allocates nothing once `head.headers` has grown.
#include "tests/mock_aoai/h2_head.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace spillway::mock {

nghttp2_nv Nv(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

namespace {

bool IsConnectionSpecific(absl::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "transfer-encoding" ||
         name == "proxy-connection" || name == "upgrade";
}

}  // namespace

bool ToH2Head(std::string& out, H2Head& head) {
  head.headers.clear();
  const size_t blank = out.find("\r\n\r\n");
  if (blank == std::string::npos) {
    return false;
  }
  head.size = blank + 4;
  // "HTTP/1.1 200 OK": the status is the three digits after the version.
  const absl::string_view all(out.data(), head.size);
  if (!absl::StartsWith(all, "HTTP/1.") || all.size() < 13 || all[8] != ' ' ||
      !absl::ascii_isdigit(all[9]) || !absl::ascii_isdigit(all[10]) ||
      !absl::ascii_isdigit(all[11]) || (all[12] != ' ' && all[12] != '\r')) {
    return false;
  }
  head.headers.push_back(Nv(":status", all.substr(9, 3)));
  size_t at = all.find("\r\n") + 2;
  while (at < blank + 2) {
    const size_t end = all.find("\r\n", at);
    const size_t colon = all.find(':', at);
    if (colon == absl::string_view::npos || colon >= end || colon == at) {
      return false;
    }
    for (size_t i = at; i < colon; ++i) {
      out[i] = absl::ascii_tolower(static_cast<unsigned char>(out[i]));
    }
    const absl::string_view name = all.substr(at, colon - at);
    const absl::string_view value =
        absl::StripAsciiWhitespace(all.substr(colon + 1, end - colon - 1));
    if (!IsConnectionSpecific(name)) {
      head.headers.push_back(Nv(name, value));
    }
    at = end + 2;
  }
  return true;
}

}  // namespace spillway::mock
