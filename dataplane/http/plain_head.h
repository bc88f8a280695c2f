// Parses a plain head (head_scan.h) with Beast's parser doing only what only it must: the start
// line and the fields that frame the message (its length, chunking, whether the connection is
// kept or upgraded) go to the parser as a head of their own, verbatim, so it validates them and
// reads the body exactly as if it had parsed the whole head; every other field then goes
// straight to `on_field`, as the parser would have given it to its `on_field_impl`, in the
// head's order (after the framing fields, where the parser would have interleaved them).
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>

#include "dataplane/http/head_scan.h"

namespace spillway {

enum class PlainHeadPut {
  kTaken,       // the head went to the parser (`ec` says how that went); `used` of the bytes
  kIncomplete,  // nothing done: the head is not whole yet
  kNotPlain,    // nothing done: the parser is to have the bytes as they are
};

// `bytes` start a message the parser has seen nothing of, whose plain head `lines` describe
// (ScanHead said kWhole). On kTaken without error, `used` is the whole head and the parser is
// where its own parse of the head would have left it. On kTaken with an error (a bad start line
// or framing field, Beast's verdict), `used` is what the parser took of the framing head.
// kNotPlain: nothing done.
template <bool kIsRequest, class OnField>
PlainHeadPut PutScannedHead(boost::beast::http::basic_parser<kIsRequest>& parser,
                            std::string_view bytes, const HeadLines& lines, std::size_t& used,
                            boost::beast::error_code& ec, OnField&& on_field) {
  if (parser.eager()) {
    return PlainHeadPut::kNotPlain;  // it would parse on into the bytes after the framing head
  }
  const char* head = bytes.data();
  // Connection: keep-alive is the default in HTTP/1.1: the parser is not told (Beast spends
  // ~700 instructions on a Connection field), unless there are more Connection fields, whose
  // order among themselves must stay.
  const std::string_view start_line(head, lines.start_line_end - 2);
  const bool http11 =
      kIsRequest ? start_line.ends_with(" HTTP/1.1") : start_line.starts_with("HTTP/1.1 ");
  std::size_t connections = 0;
  for (std::size_t i = 0; i < lines.count; ++i) {
    connections += lines.fields[i].framing == HeadFraming::kConnection ? 1 : 0;
  }
  const bool skip_keep_alive = http11 && connections == 1;
  auto to_parser = [skip_keep_alive](const HeadLines::Field& field) {
    return field.framing != HeadFraming::kNone && !(skip_keep_alive && field.keep_alive);
  };
  // A long target (a start line past this) is rare enough to leave to Beast.
  constexpr std::size_t kLookahead = 8;
  constexpr std::size_t kFramingHeadMax = 2048;
  char framing[kFramingHeadMax + kLookahead];
  if (lines.start_line_end + 2 > kFramingHeadMax) {
    return PlainHeadPut::kNotPlain;
  }
  std::memcpy(framing, head, lines.start_line_end);
  std::size_t at = lines.start_line_end;
  for (std::size_t i = 0; i < lines.count; ++i) {
    const HeadLines::Field& field = lines.fields[i];
    if (to_parser(field)) {
      const std::size_t size = field.end - field.begin;
      if (at + size + 2 > kFramingHeadMax) {
        return PlainHeadPut::kNotPlain;
      }
      std::memcpy(framing + at, head + field.begin, size);
      at += size;
    }
  }
  framing[at++] = '\r';
  framing[at++] = '\n';
  // Bytes after the head, never parsed as part of it: Beast looks ahead up to 8 bytes (the
  // version) before judging a start line, and says need_more, not its error, when the buffer
  // ends first. Every start-line element fails at its first CR, so what follows never changes
  // the verdict, only lets Beast reach it, as it would with the client's further bytes.
  std::memset(framing + at, 'x', kLookahead);
  used = parser.put(boost::asio::const_buffer(framing, at + kLookahead), ec);
  if (ec) {
    return PlainHeadPut::kTaken;
  }
  if (!parser.is_header_done() || used != at) {
    // Cannot be: the framing head is whole, and a parser that is not eager stops at its end.
    // Refused rather than trusted.
    ec = boost::beast::http::error::partial_message;
    return PlainHeadPut::kTaken;
  }
  for (std::size_t i = 0; i < lines.count; ++i) {
    const HeadLines::Field& field = lines.fields[i];
    if (to_parser(field)) {
      continue;
    }
    const std::string_view name = field.Name(head);
    const std::string_view value = field.Value(head);
    on_field(boost::beast::http::string_to_field(name), name, value);
  }
  used = lines.size;
  return PlainHeadPut::kTaken;
}

// The same from the bytes: `limit` is the parser's header limit.
template <bool kIsRequest, class OnField>
PlainHeadPut PutPlainHead(boost::beast::http::basic_parser<kIsRequest>& parser,
                          std::string_view bytes, std::size_t limit, std::size_t& used,
                          boost::beast::error_code& ec, OnField&& on_field) {
  if (parser.eager()) {
    return PlainHeadPut::kNotPlain;
  }
  HeadLines lines;
  switch (ScanHead(bytes, limit, lines)) {
    case HeadScan::kWhole:
      return PutScannedHead(parser, bytes, lines, used, ec, std::forward<OnField>(on_field));
    case HeadScan::kIncomplete:
      return PlainHeadPut::kIncomplete;
    case HeadScan::kNotPlain:
      break;
  }
  return PlainHeadPut::kNotPlain;
}

}  // namespace spillway
