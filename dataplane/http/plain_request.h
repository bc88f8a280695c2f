// A client's request head taken without Beast's parser at all, when it is plain (head_scan.h)
// and needs nothing of what the parser does beyond reading: a known method, an HTTP/1.0 or 1.1
// request line, a body framed by one Content-Length of digits or none, no Transfer-Encoding or
// Upgrade, and Connection fields that say only keep-alive or close. The session then reads the
// body itself (plain_head.h still has Beast parse the start line and framing of any other plain
// head, and Beast parses the rest).
#pragma once

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "dataplane/http/head_scan.h"

namespace spillway {

// What a plain request's head says, as offsets into the bytes scanned.
struct PlainRequestHead {
  HeadLines lines;
  std::string_view method;
  std::string_view target;
  boost::beast::http::verb verb = boost::beast::http::verb::unknown;
  unsigned version = 0;  // 10 or 11
  uint64_t content_length = 0;
  bool has_content_length = false;
};

// Whether `bytes` open with a whole request head, under `limit` bytes, that is plain in the
// sense above; `head` describes it if so. Anything else (incomplete, or for Beast) is false.
bool ScanPlainRequest(std::string_view bytes, std::size_t limit, PlainRequestHead& head);

// A plain request head's size and body length.
struct PlainRequest {
  std::size_t head_size = 0;
  std::optional<uint64_t> content_length;
};

// Fills `request`, untouched so far, as Beast's request parser would from the head `bytes`
// open with, when it is plain (ScanPlainRequest); nothing is consumed. The fields go in the
// head's order, the framing ones among them.
template <class Body, class Fields>
std::optional<PlainRequest> TakePlainRequest(std::string_view bytes, std::size_t limit,
                                             boost::beast::http::request<Body, Fields>& request) {
  PlainRequestHead head;
  if (!ScanPlainRequest(bytes, limit, head)) {
    return std::nullopt;
  }
  request.target(head.target);
  if (head.verb != boost::beast::http::verb::unknown) {
    request.method(head.verb);
  }
  request.version(head.version);
  const char* data = bytes.data();
  for (std::size_t i = 0; i < head.lines.count; ++i) {
    const HeadLines::Field& field = head.lines.fields[i];
    const std::string_view name = field.Name(data);
    request.insert(boost::beast::http::string_to_field(name), name, field.Value(data));
  }
  PlainRequest taken;
  taken.head_size = head.lines.size;
  if (head.has_content_length) {
    taken.content_length = head.content_length;
  }
  return taken;
}

}  // namespace spillway
