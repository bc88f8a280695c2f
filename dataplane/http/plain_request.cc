// See plain_request.h. Every check is at least as strict as Beast's, so a head taken here is
// one Beast would have taken the same way; the fuzzer fuzz_plain_head compares the two.
#include "dataplane/http/plain_request.h"

#include <boost/beast/http/verb.hpp>

namespace spillway {
namespace {

namespace http = boost::beast::http;

// "METHOD SP target SP HTTP/1.x", the line free of control bytes (head_scan): a method Beast
// knows (its names, matched exactly, are all tokens), the target anything without a space or
// HTAB, the version 1.0 or 1.1.
bool SplitRequestLine(std::string_view line, PlainRequestHead& head) {
  const std::size_t method_end = line.find(' ');
  if (method_end == 0 || method_end == std::string_view::npos) return false;
  head.method = line.substr(0, method_end);
  head.verb = http::string_to_verb(head.method);
  if (head.verb == http::verb::unknown) return false;
  constexpr std::size_t kVersionSize = 9;  // " HTTP/1.x"
  if (line.size() < method_end + 2 + kVersionSize) return false;
  const std::string_view version = line.substr(line.size() - kVersionSize);
  if (version == " HTTP/1.1") {
    head.version = 11;
  } else if (version == " HTTP/1.0") {
    head.version = 10;
  } else {
    return false;
  }
  head.target = line.substr(method_end + 1, line.size() - kVersionSize - method_end - 1);
  // Beast's target: one or more bytes from 0x21 up but DEL. The line has no control byte but
  // HTAB (head_scan lets values hold it), so only space and HTAB are left to refuse.
  // Two memchr passes: find_first_of tests every byte against the set, ~15 instructions each.
  return !head.target.empty() && head.target.find(' ') == std::string_view::npos &&
         head.target.find('\t') == std::string_view::npos;
}

}  // namespace

bool ScanPlainRequest(std::string_view bytes, std::size_t limit, PlainRequestHead& head) {
  if (ScanHead(bytes, limit, head.lines) != HeadScan::kWhole) return false;
  if (!SplitRequestLine(bytes.substr(0, head.lines.start_line_end - 2), head)) return false;
  for (std::size_t i = 0; i < head.lines.count; ++i) {
    const HeadLines::Field& field = head.lines.fields[i];
    const std::string_view value = field.Value(bytes.data());
    switch (field.framing) {
      case HeadFraming::kNone:
        break;
      case HeadFraming::kContentLength:
        if (head.has_content_length || !PlainLength(value, head.content_length)) return false;
        head.has_content_length = true;
        break;
      case HeadFraming::kConnection:
      case HeadFraming::kProxyConnection:
        if (!PlainEqualsLower(value, "keep-alive") && !PlainEqualsLower(value, "close")) {
          return false;
        }
        break;
      case HeadFraming::kTransferEncoding:
      case HeadFraming::kUpgrade:
        return false;  // Beast's
    }
  }
  return true;
}

}  // namespace spillway
