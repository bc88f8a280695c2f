// The pin log's bytes: its header and its records, each checksummed, encoded and decoded.
//
// Layout (little-endian): an 8-byte header "SPWPINS" 0x01, then records
//   u32 crc32 (zlib) of the rest of the record | u16 body length | body
// with bodies
//   0x01 pin:    key[16] | u32 backend string | u32 tenant string | i64 expires_unix_s
//   0x02 unpin:  key[16]
//   0x03 string: u32 index | bytes      (defines the next string index, before any use)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/routing/object_pin_key.h"
#include "dataplane/routing/object_pin_strings.h"

namespace spillway {
namespace object_pins_internal {

inline constexpr std::array<char, 8> kPinLogHeader = {'S', 'P', 'W', 'P', 'I', 'N', 'S', '\x01'};
inline constexpr std::size_t kRecordHeaderBytes = 6;  // u32 crc, u16 body length
inline constexpr std::size_t kPinRecordBytes = kRecordHeaderBytes + 1 + PinKey::kBytes + 4 + 4 + 8;
inline constexpr std::size_t kUnpinRecordBytes = kRecordHeaderBytes + 1 + PinKey::kBytes;

// Fixed-size records, built on the stack: Pin and Unpin append them under a shard lock.
std::array<char, kPinRecordBytes> EncodePinRecord(const PinKey& key, const PinSlot& slot);
std::array<char, kUnpinRecordBytes> EncodeUnpinRecord(const PinKey& key);

// The strings a log defines, indexes [0, count), and the size of their records.
struct LoggedStrings {
  std::size_t count = 0;
  uint64_t record_bytes = 0;

  // Appends to `out` string records for those interned since, which the log then defines.
  void AppendNew(const PinStrings& strings, std::string* out);
};

// A record's contents, decoded.
struct PinLogRecord {
  enum class Type : uint8_t { kPin = 1, kUnpin = 2, kString = 3 };  // the body's first byte

  Type type = Type::kPin;
  PinKey key;                 // kPin, kUnpin
  PinSlot slot;               // kPin
  uint32_t string_index = 0;  // kString
  absl::string_view text;     // kString: points into the decoded bytes
};

// The size of the whole record whose first kRecordHeaderBytes are at `record`.
std::size_t RecordBytes(const char* record);
// Whether a whole record's checksum matches its length and body.
bool RecordIntact(absl::string_view record);
// A whole, intact record's contents; nullopt for an unknown type or a body of the wrong size.
std::optional<PinLogRecord> DecodeRecord(absl::string_view record);

}  // namespace object_pins_internal
}  // namespace spillway
