// Fuzzes the parser that relays a backend's HTTP/1.1 answer: any bytes from a backend parse
// or fail with an error, never a crash or a write past the body buffer it was given.
#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dataplane/http/rate_limit_headers.h"
#include "dataplane/upstream/relay_response_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const spillway::RateLimitHeaders kRateLimit;
  spillway::RelayResponseParser parser(kRateLimit);
  parser.body_limit(1 << 20);
  char body[512];
  size_t at = 0;
  while (at < size && !parser.is_done()) {
    parser.SetBodyBuffer(body, sizeof(body));
    boost::beast::error_code ec;
    const size_t used = parser.put(boost::asio::buffer(data + at, size - at), ec);
    if (parser.body_room() > sizeof(body)) {
      std::abort();
    }
    if (ec == boost::beast::http::error::need_buffer) {
      at += used;
      continue;  // the body buffer is full: hand it a fresh one
    }
    if (ec || used == 0) {
      break;
    }
    at += used;
  }
  (void)parser.retry_after();
  return 0;
}
