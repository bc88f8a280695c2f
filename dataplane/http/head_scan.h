// Splits an HTTP/1.1 head into its lines 32 bytes at a time (16 without AVX2), for heads that
// are plain: CRLF line ends, token names, values without control bytes, no obs-fold. Beast 1.81
// parses a head a byte at a time (its vectorised search is a stub): ~10k instructions a request
// for the client's and the backend's heads, a quarter of the agent's own work. Anything not
// plain is left to Beast, so what Beast would refuse is still refused with Beast's error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spillway {

// The fields that frame a message: how long its body is, whether the connection is kept or
// upgraded.
enum class HeadFraming : uint8_t {
  kNone,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kProxyConnection,
  kUpgrade,
};

// The lines of one head, as offsets into the bytes scanned.
struct HeadLines {
  // More fields than this are unusual; such a head is left to Beast.
  static constexpr std::size_t kMaxFields = 96;

  struct Field {
    uint32_t begin;        // the line's first byte (its name's)
    uint32_t name_end;     // the colon
    uint32_t value_begin;  // the value, without the whitespace around it
    uint32_t value_end;
    uint32_t end;  // past the line's CRLF
    // Whether this is one of the fields by which Beast frames the message, and which: left to
    // Beast (plain_head.h) or read here (plain_request.h).
    HeadFraming framing;
    // A Connection field whose value is just keep-alive (which says nothing to Beast in an
    // HTTP/1.1 message).
    bool keep_alive;

    // The name and the value (without the whitespace around it) in `head`, the bytes scanned.
    std::string_view Name(const char* head) const { return {head + begin, name_end - begin}; }
    std::string_view Value(const char* head) const {
      return {head + value_begin, value_end - value_begin};
    }
  };

  std::size_t size = 0;            // bytes of the head, its closing empty line included
  std::size_t start_line_end = 0;  // past the start line's CRLF
  std::size_t count = 0;           // fields
  Field fields[kMaxFields];
};

enum class HeadScan {
  kWhole,       // `lines` describe a plain head
  kIncomplete,  // no empty line yet, and fewer bytes than the limit
  kNotPlain,    // for Beast to parse (or refuse): a byte or layout outside the plain form, too
                // many fields, or no end within the limit
};

// Whether `text`, bytes of a plain head, equals `lower` (lower-case letters and hyphens, at
// least 4 of them) but for the letters' case.
bool PlainEqualsLower(std::string_view text, std::string_view lower);

// Whether `value`, a plain head's field value, is a Content-Length of digits only, at most 18 of
// them (no overflow to think about; Beast takes more, and a length of an exabyte is refused
// by any body limit). Sets `length` if so.
bool PlainLength(std::string_view value, uint64_t& length);

// Scans `bytes` for a head of fewer than `limit` bytes. On kWhole, `lines` describes it;
// otherwise `lines` is unspecified.
HeadScan ScanHead(std::string_view bytes, std::size_t limit, HeadLines& lines);

}  // namespace spillway
