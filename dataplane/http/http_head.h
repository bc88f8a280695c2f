// HTTP/1.1 heads and chunk framing written by hand into reused strings. On the request path
// Beast's serializer cost more instructions than the rest of the agent's work together
// (callgrind, README "Performance"); its parsers are still what reads every message.
#pragma once

#include <boost/beast/http/message.hpp>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

// Beast's string_view as Abseil's (Debian's Abseil has a string_view type of its own).
inline absl::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

// Appends the pieces with one capacity check and one growth. (Debian's Abseil StrAppend
// zero-fills and then copies piece by piece: ~230 instructions for a header line.)
void AppendPieces(std::string& out, std::initializer_list<absl::string_view> pieces);

// Appends "name: value\r\n".
void AppendHeaderLine(std::string& head, absl::string_view name, absl::string_view value);
void AppendHeaderLine(std::string& head, absl::string_view name, uint64_t value);

// Appends "HTTP/1.1 <status> <reason>\r\n"; an empty reason gets the standard one.
void AppendStatusLine(std::string& head, unsigned status, absl::string_view reason);

// Replaces `line` with the size line of a chunk of `size` bytes ("1a2\r\n").
void WriteChunkSizeLine(std::size_t size, std::string& line);

inline constexpr absl::string_view kCrlf = "\r\n";
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";

}  // namespace spillway
