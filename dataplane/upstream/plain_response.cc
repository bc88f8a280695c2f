// See plain_response.h. Every check is at least as strict as Beast's, so an answer taken here
// is one Beast would have framed the same way; the fuzzer fuzz_plain_head compares the two.
#include "dataplane/upstream/plain_response.h"

namespace spillway {
namespace {

// "HTTP/1.1 SP 2xx SP reason": the line is free of control bytes but HTAB (head_scan), which
// is all Beast asks of a reason. A 1xx, 204 or 304 has no body whatever its length says, and
// an error answer may be read only to be dropped (Beast's way): those are Beast's.
bool SplitStatusLine(std::string_view line, PlainResponse& response) {
  constexpr std::string_view kVersion = "HTTP/1.1 ";
  if (line.size() < kVersion.size() + 4 || !line.starts_with(kVersion)) return false;
  const char* code = line.data() + kVersion.size();
  if (code[0] != '2' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' ||
      code[3] != ' ') {
    return false;
  }
  response.status =
      200u + static_cast<unsigned>(code[1] - '0') * 10u + static_cast<unsigned>(code[2] - '0');
  response.reason = line.substr(kVersion.size() + 4);
  return response.status != 204;
}

}  // namespace

std::optional<PlainResponse> ReadPlainResponse(std::string_view bytes, const HeadLines& lines) {
  PlainResponse response;
  if (!SplitStatusLine(bytes.substr(0, lines.start_line_end - 2), response)) return std::nullopt;
  bool has_length = false;
  for (std::size_t i = 0; i < lines.count; ++i) {
    const HeadLines::Field& field = lines.fields[i];
    const std::string_view value = field.Value(bytes.data());
    switch (field.framing) {
      case HeadFraming::kNone:
        break;
      case HeadFraming::kContentLength:
        if (has_length || !PlainLength(value, response.content_length)) return std::nullopt;
        has_length = true;
        break;
      case HeadFraming::kConnection:
        if (PlainEqualsLower(value, "close")) {
          response.keep_alive = false;
        } else if (!field.keep_alive) {
          return std::nullopt;
        }
        break;
      case HeadFraming::kProxyConnection:
      case HeadFraming::kTransferEncoding:
      case HeadFraming::kUpgrade:
        return std::nullopt;
    }
  }
  if (!has_length) return std::nullopt;  // a body to the connection's end: Beast's
  return response;
}

}  // namespace spillway
