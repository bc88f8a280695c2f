// See head_scan.h. One pass finds every control byte of the head 32 bytes at a time (AVX2; 16
// with SSE2, part of x86-64, without it); the only control bytes a plain head holds are its
// lines' CRLFs, so each line is then split knowing it holds nothing else.
#include "dataplane/http/head_scan.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace spillway {
namespace {

// RFC 9110's tchar: what Beast accepts in a field name.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}
constexpr std::array<bool, 256> kToken = MakeTokenTable();

// kToken as two 16-entry tables for PSHUFB: a byte is a tchar if the entry of its low nibble
// and the entry of its high nibble share a bit. Every tchar's high nibble is 2 to 7, so one bit
// a high nibble fits; bytes from 0x80 find 0 (the index's top bit makes PSHUFB give 0).
struct NibbleTables {
  std::array<uint8_t, 16> low{};
  std::array<uint8_t, 16> high{};
};
constexpr NibbleTables MakeNibbleTables() {
  NibbleTables tables;
  for (int high = 2; high <= 7; ++high) {
    tables.high[high] = static_cast<uint8_t>(1 << (high - 2));
    for (int low = 0; low < 16; ++low) {
      if (kToken[high * 16 + low]) tables.low[low] |= tables.high[high];
    }
  }
  return tables;
}
constexpr NibbleTables kTokenNibbles = MakeNibbleTables();
constexpr bool TablesAgree() {
  for (int c = 0; c < 256; ++c) {
    const bool in_tables = c < 128 && (kTokenNibbles.low[c & 15] & kTokenNibbles.high[c >> 4]);
    if (in_tables != kToken[c]) return false;
  }
  return true;
}
static_assert(TablesAgree(), "the nibble tables say what kToken says");

// Control bytes other than HTAB, and DEL: what Beast refuses in a value, and where a line ends.
// One bit a byte of the 16 at `block`.
inline uint32_t ControlMask16(const char* block) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
  const __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x1F)), bytes);
  const __m128i tab = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\t'));
  const __m128i del = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(0x7F));
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, low), del)));
}

// The same for the 32 bytes at `block`.
__attribute__((target("avx2"))) inline uint32_t ControlMask32(const char* block) {
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
  const __m256i low = _mm256_cmpeq_epi8(_mm256_min_epu8(bytes, _mm256_set1_epi8(0x1F)), bytes);
  const __m256i tab = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8('\t'));
  const __m256i del = _mm256_cmpeq_epi8(bytes, _mm256_set1_epi8(0x7F));
  return static_cast<uint32_t>(
      _mm256_movemask_epi8(_mm256_or_si256(_mm256_andnot_si256(tab, low), del)));
}

// Bit i set for each of the 32 bytes at `at` that is no tchar.
__attribute__((target("avx2"))) inline uint32_t NonTokenMask32(const char* at) {
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
  const __m256i low_table = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kTokenNibbles.low.data())));
  const __m256i high_table = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kTokenNibbles.high.data())));
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i low = _mm256_shuffle_epi8(low_table, _mm256_and_si256(bytes, nibble));
  // Bytes from 0x80 keep their top bit as the index, and PSHUFB gives 0 for them.
  const __m256i high_index =
      _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble),
                      _mm256_and_si256(bytes, _mm256_set1_epi8(static_cast<char>(0x80))));
  const __m256i high = _mm256_shuffle_epi8(high_table, high_index);
  const __m256i none = _mm256_cmpeq_epi8(_mm256_and_si256(low, high), _mm256_setzero_si256());
  return static_cast<uint32_t>(_mm256_movemask_epi8(none));
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");

// A byte of a plain head (no control bytes) ORed with 0x20 is a lower-case letter only if it
// was that letter in either case, and a hyphen only if it was one (0x0D, the other, is a CR).
// Eight bytes a compare, the last ones overlapping.
inline bool NameIs(const char* name, std::size_t size, std::string_view lower) {
  if (size != lower.size()) return false;
  if (size < 8) {
    uint32_t a, b, c, d;
    std::memcpy(&a, name, 4);
    std::memcpy(&b, lower.data(), 4);
    std::memcpy(&c, name + size - 4, 4);
    std::memcpy(&d, lower.data() + size - 4, 4);
    return ((a | 0x20202020u) == b) && ((c | 0x20202020u) == d);
  }
  constexpr uint64_t kLower = 0x2020202020202020ull;
  uint64_t a, b;
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    std::memcpy(&a, name + i, 8);
    std::memcpy(&b, lower.data() + i, 8);
    if ((a | kLower) != b) return false;
  }
  std::memcpy(&a, name + size - 8, 8);
  std::memcpy(&b, lower.data() + size - 8, 8);
  return (a | kLower) == b;
}

// Each framing field's name has a length of its own.
HeadFraming FramingNamed(const char* name, std::size_t size) {
  switch (size) {
    case 7:
      return NameIs(name, size, "upgrade") ? HeadFraming::kUpgrade : HeadFraming::kNone;
    case 10:
      return NameIs(name, size, "connection") ? HeadFraming::kConnection : HeadFraming::kNone;
    case 14:
      return NameIs(name, size, "content-length") ? HeadFraming::kContentLength
                                                  : HeadFraming::kNone;
    case 16:
      return NameIs(name, size, "proxy-connection") ? HeadFraming::kProxyConnection
                                                    : HeadFraming::kNone;
    case 17:
      return NameIs(name, size, "transfer-encoding") ? HeadFraming::kTransferEncoding
                                                     : HeadFraming::kNone;
    default:
      return HeadFraming::kNone;
  }
}

inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// The first byte from `at` on, before `end`, that is no tchar; `end` if none is.
std::size_t TokenEndBytes(const char* head, std::size_t at, std::size_t end) {
  while (at < end && kToken[static_cast<unsigned char>(head[at])]) ++at;
  return at;
}

// The same, 32 bytes at a time while `size` (the bytes that may be read) allows.
__attribute__((target("avx2"))) inline std::size_t TokenEndAvx2(const char* head, std::size_t at,
                                                                std::size_t end, std::size_t size) {
  while (at + 32 <= size && at < end) {
    const uint32_t non_token = NonTokenMask32(head + at);
    if (non_token != 0) {
      return std::min(end, at + static_cast<std::size_t>(__builtin_ctz(non_token)));
    }
    at += 32;
  }
  return TokenEndBytes(head, at, end);
}

// A field line [begin, cr) free of control bytes: `name: value`, the name a token. `size`: the
// bytes that may be read.
template <bool kAvx2>
__attribute__((always_inline)) inline bool SplitField(const char* head, std::size_t size,
                                                      std::size_t begin, std::size_t cr,
                                                      HeadLines::Field& field) {
  const std::size_t at =
      kAvx2 ? TokenEndAvx2(head, begin, cr, size) : TokenEndBytes(head, begin, cr);
  // An empty name, or a line opening with whitespace (obs-fold), or a byte no name may hold.
  if (at == begin || at == cr || head[at] != ':') return false;
  field.begin = static_cast<uint32_t>(begin);
  field.name_end = static_cast<uint32_t>(at);
  std::size_t value = at + 1;
  while (value < cr && IsBlank(head[value])) ++value;
  std::size_t value_end = cr;
  while (value_end > value && IsBlank(head[value_end - 1])) --value_end;
  field.value_begin = static_cast<uint32_t>(value);
  field.value_end = static_cast<uint32_t>(value_end);
  field.end = static_cast<uint32_t>(cr + 2);
  field.framing = FramingNamed(head + begin, at - begin);
  field.keep_alive = field.framing == HeadFraming::kConnection &&
                     NameIs(head + value, value_end - value, "keep-alive");
  return true;
}

// The scan, `kWidth` bytes a turn (`kControlMask` says which of them are control bytes).
// Inlined into each entry point, so the AVX2 one is compiled for AVX2 whole and its mask and
// token helpers inline too (as calls they were ~700 instructions a request, callgrind).
template <std::size_t kWidth, uint32_t (*kControlMask)(const char*), bool kAvx2>
__attribute__((always_inline)) inline HeadScan Scan(std::string_view bytes, std::size_t limit,
                                                    HeadLines& lines) {
  const char* head = bytes.data();
  const std::size_t n = std::min(bytes.size(), limit);
  // Past the bytes looked at, the answer depends on whether more may still come.
  const HeadScan out_of_bytes = n < limit ? HeadScan::kIncomplete : HeadScan::kNotPlain;
  lines.count = 0;
  std::size_t line_begin = 0;
  bool in_start_line = true;
  // The LF of the last CRLF, a control byte already accounted for.
  std::size_t known_lf = static_cast<std::size_t>(-1);
  for (std::size_t block = 0; block < n; block += kWidth) {
    uint32_t mask;
    if (n - block >= kWidth) {
      mask = kControlMask(head + block);
    } else {
      char tail[kWidth];
      std::memset(tail, 'a', sizeof(tail));
      std::memcpy(tail, head + block, n - block);
      mask = kControlMask(tail);
    }
    for (; mask != 0; mask &= mask - 1) {
      const std::size_t cr = block + static_cast<std::size_t>(__builtin_ctz(mask));
      if (cr == known_lf) continue;  // not a CR: the LF of the line just ended
      if (head[cr] != '\r') return HeadScan::kNotPlain;
      if (cr + 1 >= n) return out_of_bytes;
      if (head[cr + 1] != '\n') return HeadScan::kNotPlain;
      known_lf = cr + 1;
      if (cr == line_begin) {
        // An empty line: the end of the head, or a stray one before the start line.
        if (in_start_line) return HeadScan::kNotPlain;
        lines.size = cr + 2;
        return lines.size < limit ? HeadScan::kWhole : HeadScan::kNotPlain;
      }
      if (in_start_line) {
        in_start_line = false;
        lines.start_line_end = cr + 2;
      } else {
        if (lines.count == HeadLines::kMaxFields) return HeadScan::kNotPlain;
        if (!SplitField<kAvx2>(head, bytes.size(), line_begin, cr, lines.fields[lines.count])) {
          return HeadScan::kNotPlain;
        }
        ++lines.count;
      }
      line_begin = cr + 2;
    }
  }
  return out_of_bytes;
}

}  // namespace

bool PlainEqualsLower(std::string_view text, std::string_view lower) {
  return NameIs(text.data(), text.size(), lower);
}

bool PlainLength(std::string_view value, uint64_t& length) {
  if (value.empty() || value.size() > 18) return false;
  length = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
    length = length * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

namespace {

__attribute__((target("avx2"))) HeadScan ScanAvx2(std::string_view bytes, std::size_t limit,
                                                  HeadLines& lines) {
  return Scan<32, ControlMask32, true>(bytes, limit, lines);
}

HeadScan ScanSse2(std::string_view bytes, std::size_t limit, HeadLines& lines) {
  return Scan<16, ControlMask16, false>(bytes, limit, lines);
}

}  // namespace

HeadScan ScanHead(std::string_view bytes, std::size_t limit, HeadLines& lines) {
  return kHasAvx2 ? ScanAvx2(bytes, limit, lines) : ScanSse2(bytes, limit, lines);
}

}  // namespace spillway
