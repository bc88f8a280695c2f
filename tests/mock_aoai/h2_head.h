// The HTTP/1 response head the ApiHandler writes, turned into HTTP/2 response headers, so both
// protocols answer from the same bytes.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace spillway::mock {

// A header for nghttp2, pointing at `name` and `value` (nghttp2 copies both when it is given
// them, so they need only live until that call).
nghttp2_nv Nv(absl::string_view name, absl::string_view value);

struct H2Head {
  size_t size = 0;                  // bytes of the head in `out`, blank line included
  std::vector<nghttp2_nv> headers;  // ":status" first; names and values point into `out`
};

// Parses the head at the start of `out` ("HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n"):
// lowercases header names in place (HTTP/2 requires it) and drops the connection-specific
// ones HTTP/2 forbids (connection, keep-alive, transfer-encoding, proxy-connection, upgrade).
// False when `out` does not start with a complete, well-formed head.
bool ToH2Head(std::string& out, H2Head& head);

}  // namespace spillway::mock
