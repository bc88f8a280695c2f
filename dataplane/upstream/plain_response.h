// A backend's answer whose head the relay takes without Beast's parser at all: a plain head
// (head_scan.h) of an HTTP/1.1 success other than 204, framed by one Content-Length of digits,
// with no Transfer-Encoding, Upgrade or Proxy-Connection, and Connection fields that say only
// keep-alive or close: every non-streamed success Azure OpenAI sends. Its body is then counted
// by RelayResponseParser itself. Everything else (errors, interim answers, chunked streams)
// still goes through Beast.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "dataplane/http/head_scan.h"

namespace spillway {

struct PlainResponse {
  unsigned status = 0;
  std::string_view reason;  // in the bytes scanned
  uint64_t content_length = 0;
  bool keep_alive = true;  // no Connection: close
};

// What the head that `bytes` open with says, when `lines` (ScanHead's kWhole for `bytes`)
// describe one the relay may take as above; nullopt for Beast to parse.
std::optional<PlainResponse> ReadPlainResponse(std::string_view bytes, const HeadLines& lines);

}  // namespace spillway
