// A pin as both the in-memory map and the log hold it: the object id's key, the first 128 bits
// of its SHA-256, and the slot the key maps to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "absl/strings/string_view.h"

namespace spillway {
namespace object_pins_internal {

struct PinKey {
  static constexpr std::size_t kBytes = 16;

  uint64_t hi = 0;  // its top bits pick the shard
  uint64_t lo = 0;  // hashes within the shard
  bool operator==(const PinKey&) const = default;

  // The key as the digest's own bytes, so the log holds the same bytes in every process.
  static PinKey FromBytes(const char* in) {
    PinKey key;
    std::memcpy(&key.hi, in, 8);
    std::memcpy(&key.lo, in + 8, 8);
    return key;
  }
  void ToBytes(char* out) const {
    std::memcpy(out, &hi, 8);
    std::memcpy(out + 8, &lo, 8);
  }
};

// The key of `object_id`; nullopt only when libcrypto fails, so that no two ids share a key.
std::optional<PinKey> PinKeyOf(absl::string_view object_id);

struct PinSlot {
  uint32_t backend = 0;  // PinStrings indexes
  uint32_t tenant = 0;
  int64_t expires_unix_s = 0;
};

}  // namespace object_pins_internal
}  // namespace spillway
