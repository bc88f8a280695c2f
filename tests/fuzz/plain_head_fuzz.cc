// Fuzzes the plain-head paths against Beast: any bytes, parsed as a client's request and as a
// backend's response, come out of the plain path (head_scan, plain_head) exactly as out of
// Beast's parser alone, and a request taken without Beast (plain_request) is the one Beast
// makes of them. A difference aborts.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/http/plain_head.h"
#include "dataplane/http/plain_request.h"
#include "dataplane/http/rate_limit_headers.h"
#include "dataplane/upstream/relay_response_parser.h"

namespace {

namespace http = boost::beast::http;
using boost::beast::error_code;

// A request's parse, with each name's values in order (the plain path may place the framing
// fields apart from the others, never reorder one name's values).
std::string DescribeRequest(std::string_view bytes, bool plain) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(8192);
  error_code ec;
  std::size_t used = 0;
  spillway::PlainHeadPut put = spillway::PlainHeadPut::kNotPlain;
  if (plain) {
    auto& request = parser.get();
    put = spillway::PutPlainHead(
        parser, bytes, 8192, used, ec,
        [&request](http::field name, std::string_view name_string, std::string_view value) {
          request.insert(name, name_string, value);
        });
  }
  if (put != spillway::PlainHeadPut::kTaken) {
    used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }
  if (ec == http::error::need_more) ec = {};
  if (ec) return "error " + ec.message();
  if (!parser.is_header_done()) return "incomplete";
  const auto& request = parser.get();
  std::string out = std::string(request.method_string()) + "|" + std::string(request.target()) +
                    "|" + std::to_string(request.version()) + "|" + std::to_string(used) + "|" +
                    std::to_string(parser.keep_alive()) + std::to_string(parser.upgrade()) +
                    std::to_string(parser.chunked()) + std::to_string(parser.is_done()) + "|" +
                    std::to_string(parser.content_length().value_or(~0ull));
  std::map<std::string, std::vector<std::string>> fields;
  for (const auto& field : request) {
    fields[std::to_string(static_cast<int>(field.name())) + std::string(field.name_string())]
        .push_back(std::string(field.value()));
  }
  for (const auto& [name, values] : fields) {
    out += "\n" + name;
    for (const auto& value : values) out += "|" + value;
  }
  return out;
}

std::string DescribeResponse(std::string_view bytes, bool plain) {
  static const spillway::RateLimitHeaders kRateLimit;
  spillway::RelayResponseParser parser(kRateLimit);
  error_code ec;
  std::size_t used = 0;
  spillway::PlainHeadPut put = spillway::PlainHeadPut::kNotPlain;
  if (plain) {
    put = spillway::PutPlainHead(
        parser, bytes, parser.head_limit(), used, ec,
        [&parser](http::field name, std::string_view name_string, std::string_view value) {
          parser.AddField(name, name_string, value);
        });
  }
  if (put != spillway::PlainHeadPut::kTaken) {
    used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }
  if (ec == http::error::need_more) ec = {};
  if (ec) return "error " + ec.message();
  if (!parser.is_header_done()) return "incomplete";
  return parser.head() + "|" + std::to_string(parser.status()) + "|" + std::to_string(used) + "|" +
         std::to_string(parser.event_stream()) + std::to_string(parser.keep_alive()) +
         std::to_string(parser.chunked()) + std::to_string(parser.need_eof()) + "|" +
         std::to_string(parser.retry_after().count()) + "|" +
         std::to_string(parser.content_length().value_or(~0ull));
}

}  // namespace

// A request message, its fields in order, and its body's length.
template <class Message>
std::string DescribeMessage(const Message& request, std::optional<uint64_t> length) {
  std::string out = std::string(request.method_string()) + "|" + std::string(request.target()) +
                    "|" + std::to_string(request.version()) + "|" +
                    std::to_string(request.keep_alive()) + "|" +
                    std::to_string(length.value_or(~0ull));
  for (const auto& field : request) {
    out += "\n" + std::to_string(static_cast<int>(field.name())) +
           std::string(field.name_string()) + "|" + std::string(field.value());
  }
  return out;
}

// A request taken whole without Beast (TakePlainRequest) is the one Beast makes of the bytes,
// framed by its length alone; one not taken is left untouched.
bool TakenAsBeastTakesIt(std::string_view bytes) {
  http::request<http::string_body> plain;
  const std::optional<spillway::PlainRequest> took = spillway::TakePlainRequest(bytes, 8192, plain);
  if (!took) return plain.begin() == plain.end();
  http::request_parser<http::string_body> parser;
  parser.header_limit(8192);
  parser.body_limit(boost::none);  // as the session parses a head: the limit is checked after
  error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec || !parser.is_header_done() || used != took->head_size || parser.chunked() ||
      parser.upgrade()) {
    return false;
  }
  const boost::optional<uint64_t> length = parser.content_length();
  return DescribeMessage(plain, took->content_length) ==
         DescribeMessage(parser.get(), length ? std::optional<uint64_t>(*length) : std::nullopt);
}

// Whether the plain path's parse equals Beast's. One difference is allowed: where the head
// ends within 8 bytes of a malformed start line's end, Beast asks for more bytes before it
// judges (its version look-ahead), and the plain path, which knows the head is whole, judges at
// once; Beast given those bytes must then reach the same verdict.
template <class Describe>
bool Agree(std::string_view bytes, Describe describe) {
  const std::string plain = describe(bytes, true);
  const std::string beast = describe(bytes, false);
  if (plain == beast) return true;
  if (beast != "incomplete" || plain.rfind("error ", 0) != 0) return false;
  const std::string more = std::string(bytes) + "xxxxxxxx";
  return describe(more, false) == plain;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!Agree(bytes, DescribeRequest)) std::abort();
  if (!TakenAsBeastTakesIt(bytes)) std::abort();
  if (!Agree(bytes, DescribeResponse)) std::abort();
  return 0;
}
