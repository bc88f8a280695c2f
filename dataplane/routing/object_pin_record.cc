// See object_pin_record.h. Integers are written byte by byte, so the log reads the same on
// any host; keys are the digest's bytes as they are.
#include "dataplane/routing/object_pin_record.h"

#include <zlib.h>

#include <cstring>

namespace spillway {
namespace object_pins_internal {
namespace {

constexpr std::size_t kStringFieldBytes = 4;  // u32 index, before the bytes

void PutLittleEndian(char* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>(value >> (8 * i));
}

uint64_t GetLittleEndian(const char* in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  }
  return value;
}

uint32_t Crc32(const char* data, std::size_t size) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
}

// Writes a record's type byte and returns where its fields go.
char* StartRecord(char* record, PinLogRecord::Type type) {
  record[kRecordHeaderBytes] = static_cast<char>(type);
  return record + kRecordHeaderBytes + 1;
}

// Fills in the length and checksum of a record whose body is already in place.
void SealRecord(char* record, std::size_t record_bytes) {
  PutLittleEndian(record + 4, record_bytes - kRecordHeaderBytes, 2);
  PutLittleEndian(record, Crc32(record + 4, record_bytes - 4), 4);
}

}  // namespace

std::array<char, kPinRecordBytes> EncodePinRecord(const PinKey& key, const PinSlot& slot) {
  std::array<char, kPinRecordBytes> record;
  char* fields = StartRecord(record.data(), PinLogRecord::Type::kPin);
  key.ToBytes(fields);
  PutLittleEndian(fields + PinKey::kBytes, slot.backend, 4);
  PutLittleEndian(fields + PinKey::kBytes + 4, slot.tenant, 4);
  PutLittleEndian(fields + PinKey::kBytes + 8, static_cast<uint64_t>(slot.expires_unix_s), 8);
  SealRecord(record.data(), record.size());
  return record;
}

std::array<char, kUnpinRecordBytes> EncodeUnpinRecord(const PinKey& key) {
  std::array<char, kUnpinRecordBytes> record;
  key.ToBytes(StartRecord(record.data(), PinLogRecord::Type::kUnpin));
  SealRecord(record.data(), record.size());
  return record;
}

void LoggedStrings::AppendNew(const PinStrings& strings, std::string* out) {
  const std::size_t before = out->size();
  const std::size_t interned = strings.size();
  for (; count < interned; ++count) {
    const std::string& text = strings.Get(static_cast<uint32_t>(count));
    const std::size_t start = out->size();
    out->resize(start + kRecordHeaderBytes + 1 + kStringFieldBytes + text.size());
    char* fields = StartRecord(out->data() + start, PinLogRecord::Type::kString);
    PutLittleEndian(fields, count, 4);
    std::memcpy(fields + kStringFieldBytes, text.data(), text.size());
    SealRecord(out->data() + start, out->size() - start);
  }
  record_bytes += out->size() - before;
}

std::size_t RecordBytes(const char* record) {
  return kRecordHeaderBytes + GetLittleEndian(record + 4, 2);
}

bool RecordIntact(absl::string_view record) {
  return Crc32(record.data() + 4, record.size() - 4) == GetLittleEndian(record.data(), 4);
}

std::optional<PinLogRecord> DecodeRecord(absl::string_view record) {
  const absl::string_view body = record.substr(kRecordHeaderBytes);
  if (body.empty()) {
    return std::nullopt;
  }
  const char* fields = body.data() + 1;
  PinLogRecord decoded;
  decoded.type = static_cast<PinLogRecord::Type>(static_cast<uint8_t>(body[0]));
  switch (decoded.type) {
    case PinLogRecord::Type::kPin:
      if (record.size() != kPinRecordBytes) {
        return std::nullopt;
      }
      decoded.key = PinKey::FromBytes(fields);
      decoded.slot.backend = static_cast<uint32_t>(GetLittleEndian(fields + PinKey::kBytes, 4));
      decoded.slot.tenant = static_cast<uint32_t>(GetLittleEndian(fields + PinKey::kBytes + 4, 4));
      decoded.slot.expires_unix_s =
          static_cast<int64_t>(GetLittleEndian(fields + PinKey::kBytes + 8, 8));
      return decoded;
    case PinLogRecord::Type::kUnpin:
      if (record.size() != kUnpinRecordBytes) {
        return std::nullopt;
      }
      decoded.key = PinKey::FromBytes(fields);
      return decoded;
    case PinLogRecord::Type::kString:
      if (body.size() < 1 + kStringFieldBytes) {
        return std::nullopt;
      }
      decoded.string_index = static_cast<uint32_t>(GetLittleEndian(fields, 4));
      decoded.text = body.substr(1 + kStringFieldBytes);
      return decoded;
  }
  return std::nullopt;  // an unknown type
}

}  // namespace object_pins_internal
}  // namespace spillway
