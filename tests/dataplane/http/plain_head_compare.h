// Parses bytes as a client's request and as a backend's response both ways, through the
// plain-head paths (head_scan, plain_head, plain_request, plain_response) and through Beast's
// parser alone, and describes what each made, for the unit tests and the fuzzer to compare.
#pragma once

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/http/plain_head.h"
#include "dataplane/http/plain_request.h"
#include "dataplane/http/rate_limit_headers.h"
#include "dataplane/upstream/relay_response_parser.h"

namespace spillway::plain_head_compare {

namespace http = boost::beast::http;
using boost::beast::error_code;

// What a parse made: its error, or its start line, framing and fields (in the message's order).
struct Parse {
  std::string description;
  PlainHeadPut put = PlainHeadPut::kNotPlain;
};

inline std::string DescribeRequestParser(const http::request_parser<http::string_body>& parser,
                                         error_code ec, std::size_t used) {
  if (ec) return "error: " + ec.message();
  if (!parser.is_header_done()) return "incomplete";
  const auto& request = parser.get();
  std::string out = std::string(request.method_string()) + " " + std::string(request.target()) +
                    " " + std::to_string(request.version()) + " used " + std::to_string(used);
  out += " keep_alive " + std::to_string(parser.keep_alive());
  out += " upgrade " + std::to_string(parser.upgrade());
  out += " chunked " + std::to_string(parser.chunked());
  out += " length " + std::to_string(parser.content_length().value_or(~0ull));
  out += " done " + std::to_string(parser.is_done());
  for (const auto& field : request) {
    out += "\n" + std::to_string(static_cast<int>(field.name())) + " " +
           std::string(field.name_string()) + ": [" + std::string(field.value()) + "]";
  }
  return out;
}

// `bytes` as a client's request: through the plain-head path (and Beast where it declines) if
// `plain`, else through Beast alone.
inline Parse ParseRequest(std::string_view bytes, bool plain, std::size_t limit) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limit));
  Parse result;
  error_code ec;
  std::size_t used = 0;
  if (plain) {
    auto& request = parser.get();
    result.put = PutPlainHead(
        parser, bytes, limit, used, ec,
        [&request](http::field name, std::string_view name_string, std::string_view value) {
          request.insert(name, name_string, value);
        });
  }
  if (result.put != PlainHeadPut::kTaken) {
    used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }
  result.description =
      DescribeRequestParser(parser, ec == http::error::need_more ? error_code{} : ec, used);
  return result;
}

// `bytes` as a backend's answer to the relay parser, the same two ways: the head the client
// would get and what the relay learns.
inline Parse ParseResponse(std::string_view bytes, bool plain) {
  static const RateLimitHeaders kRateLimit;
  RelayResponseParser parser(kRateLimit);
  Parse result;
  error_code ec;
  std::size_t used = 0;
  if (plain) {
    result.put = PutPlainHead(
        parser, bytes, parser.head_limit(), used, ec,
        [&parser](http::field name, std::string_view name_string, std::string_view value) {
          parser.AddField(name, name_string, value);
        });
  }
  if (result.put != PlainHeadPut::kTaken) {
    used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  }
  if (ec && ec != http::error::need_more) {
    result.description = "error: " + ec.message();
    return result;
  }
  if (!parser.is_header_done()) {
    result.description = "incomplete";
    return result;
  }
  result.description = "status " + std::to_string(parser.status()) + " used " +
                       std::to_string(used) + " sse " + std::to_string(parser.event_stream()) +
                       " retry " + std::to_string(parser.retry_after().count()) + " keep_alive " +
                       std::to_string(parser.keep_alive()) + " chunked " +
                       std::to_string(parser.chunked()) + " length " +
                       std::to_string(parser.content_length().value_or(~0ull)) + " eof " +
                       std::to_string(parser.need_eof()) + " header_done " +
                       std::to_string(parser.is_header_done()) + "\n" + parser.head();
  return result;
}

// A head for the mutation tests: one of `starts`, up to four of `lines`, the empty line, then
// `tail`; odd rounds with one byte replaced by a byte that heads turn on (CR, LF, SP, HTAB, ':',
// a letter in both cases, a digit, DEL, obs-text, '-', ',').
inline std::string MutatedHead(std::mt19937& random, int round,
                               const std::vector<std::string>& starts,
                               const std::vector<std::string>& lines, std::string_view tail) {
  static const std::string kAlphabet("\r\n \t:aA1\x7f\x80-,", 13);
  std::string head = starts[random() % starts.size()] + "\r\n";
  const int fields = static_cast<int>(random() % 5);
  for (int i = 0; i < fields; ++i) head += lines[random() % lines.size()] + "\r\n";
  head += "\r\n";
  head += tail;
  if (round % 2 == 1) {
    head[random() % head.size()] = kAlphabet[random() % kAlphabet.size()];
  }
  return head;
}

// A request description's field lines in the order a name first sorts, each name's values in
// order: what does not depend on where the plain-head path put the framing fields.
inline std::string Canonical(const std::string& description) {
  std::vector<std::string> lines;
  std::size_t at = description.find('\n');
  std::string out = description.substr(0, at);
  while (at != std::string::npos) {
    const std::size_t next = description.find('\n', at + 1);
    lines.push_back(description.substr(at + 1, next == std::string::npos ? next : next - at - 1));
    at = next;
  }
  std::stable_sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    return a.substr(0, a.find(':')) < b.substr(0, b.find(':'));
  });
  for (const auto& line : lines) out += "\n" + line;
  return out;
}

// A request message and its body's length, as the session uses them.
template <class Message>
std::string DescribeMessage(const Message& request, std::optional<uint64_t> length) {
  std::string out = std::string(request.method_string()) + " " + std::string(request.target()) +
                    " " + std::to_string(request.version()) + " keep_alive " +
                    std::to_string(request.keep_alive()) + " length " +
                    std::to_string(length.value_or(~0ull));
  for (const auto& field : request) {
    out += "\n" + std::to_string(static_cast<int>(field.name())) + " " +
           std::string(field.name_string()) + ": [" + std::string(field.value()) + "]";
  }
  return out;
}

// How a request taken without Beast (TakePlainRequest) differs from the one Beast's parser
// makes of the same bytes, framed by its length alone; empty if it does not, or if the request
// was not taken and left untouched. Sets `taken`.
inline std::string TakenDifference(std::string_view bytes, std::size_t limit, bool& taken) {
  http::request<http::string_body> plain;
  const std::optional<PlainRequest> took = TakePlainRequest(bytes, limit, plain);
  taken = took.has_value();
  if (!took) {
    return plain.begin() == plain.end() ? "" : "a head not taken was touched";
  }
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limit));
  parser.body_limit(boost::none);  // as the session parses a head: the limit is checked after
  error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec) return "Beast refused it: " + ec.message();
  if (!parser.is_header_done()) return "Beast found no whole head";
  if (used != took->head_size) {
    return "head size " + std::to_string(took->head_size) + ", Beast's " + std::to_string(used);
  }
  if (parser.chunked() || parser.upgrade()) return "Beast frames it otherwise";
  const boost::optional<uint64_t> length = parser.content_length();
  const std::string mine = DescribeMessage(plain, took->content_length);
  const std::string beasts =
      DescribeMessage(parser.get(), length ? std::optional<uint64_t>(*length) : std::nullopt);
  return mine == beasts ? "" : mine + "\n-- Beast's --\n" + beasts;
}

// A relay parser's view of an answer once its head is parsed: what the relay learns and the
// client's head, then the body as the relay reads it, 7 bytes of buffer at a time, and where it
// stopped.
inline std::string DescribeRelay(RelayResponseParser& parser, std::string_view rest) {
  const std::optional<uint64_t> length = parser.Length();
  std::string out = "status " + std::to_string(parser.status()) + " sse " +
                    std::to_string(parser.event_stream()) + " retry " +
                    std::to_string(parser.retry_after().count()) + " keep_alive " +
                    std::to_string(parser.KeepsAlive()) + " length " +
                    std::to_string(length.value_or(~0ull)) + "\n" + parser.head() + "body [";
  error_code ec;
  while (!parser.Done() && !rest.empty()) {
    char chunk[7];
    parser.SetBodyBuffer(chunk, sizeof(chunk));
    const std::size_t used = parser.Parse(boost::asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(used);
    out.append(chunk, sizeof(chunk) - parser.body_room());
    if (ec == http::error::need_buffer) ec = {};
    if (ec || used == 0) break;
  }
  out += "] done " + std::to_string(parser.Done()) + " left " + std::to_string(rest.size());
  if (ec) out += " error: " + ec.message();
  if (!parser.Done()) {
    parser.ParseEof(ec);
    out += " at eof: " + (ec ? ec.message() : std::string("none"));
  }
  return out;
}

// How an answer taken without Beast (RelayResponseParser::TakePlainHead, which then counts its
// body) differs from what the relay makes of the same bytes through Beast's parser: the head,
// framing and body; empty if it does not, or if it was not taken. Sets `taken`.
inline std::string TakenResponseDifference(std::string_view bytes, bool& taken) {
  static const RateLimitHeaders kRateLimit;
  taken = false;
  RelayResponseParser plain(kRateLimit);
  HeadLines lines;
  if (ScanHead(bytes, plain.head_limit(), lines) != HeadScan::kWhole) return "";
  if (!plain.TakePlainHead(bytes, lines)) return "";
  taken = true;
  RelayResponseParser beast(kRateLimit);
  beast.body_limit(boost::none);
  error_code ec;
  const std::size_t used = beast.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec) return "Beast refused it: " + ec.message();
  if (!beast.is_header_done()) return "Beast found no whole head";
  if (used != lines.size) {
    return "head size " + std::to_string(lines.size) + ", Beast's " + std::to_string(used);
  }
  if (beast.chunked() || beast.need_eof()) return "Beast frames it otherwise";
  const std::string mine = DescribeRelay(plain, bytes.substr(lines.size));
  const std::string beasts = DescribeRelay(beast, bytes.substr(used));
  return mine == beasts ? "" : mine + "\n-- Beast's --\n" + beasts;
}

}  // namespace spillway::plain_head_compare
