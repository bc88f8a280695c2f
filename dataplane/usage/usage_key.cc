// See usage_key.h. The forward search, run over every byte of every relayed response, looks
// 32 bytes at a time (AVX2; 16 with SSE2) for the key's 'u' with its 'g' three bytes on, so one
// pass finds the rare places worth comparing: memchr on 'u' alone stopped at every "chunk" and
// "results", a call per stop (~300 instructions per SSE event, callgrind); glibc's memmem
// took ~600.
#include "dataplane/usage/usage_key.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace spillway {
namespace {

constexpr std::size_t kNpos = absl::string_view::npos;

// The first key among the candidate starts `mask` marks (bit i: base + i), or npos.
std::size_t FirstKey(absl::string_view text, std::size_t base, uint64_t mask) {
  for (; mask != 0; mask &= mask - 1) {
    const std::size_t start = base + static_cast<std::size_t>(__builtin_ctzll(mask));
    if (start + kUsageKey.size() <= text.size() &&
        text.substr(start, kUsageKey.size()) == kUsageKey) {
      return start;
    }
  }
  return kNpos;
}

// Short texts, and machines without SSE2: start by start.
std::size_t ScanBytes(absl::string_view text, bool* carriage_return) {
  if (carriage_return != nullptr && !text.empty() &&
      std::memchr(text.data(), '\r', text.size()) != nullptr) {
    *carriage_return = true;
  }
  const char* const data = text.data();
  for (std::size_t at = 0; at + kUsageKey.size() <= text.size(); ++at) {
    if (data[at + 1] == 'u' && text.substr(at, kUsageKey.size()) == kUsageKey) {
      return at;
    }
  }
  return kNpos;
}

#if defined(__x86_64__)
// A block is kWidth starts; a start is a candidate when its next byte is 'u' and its fifth 'g',
// so a block reads kWidth + 4 bytes. The starts a whole block does not fit before the end are
// covered by one last block ending at the text's end, its starts already seen masked off.
// With kCr, the bytes loaded are also compared with '\r': the blocks' 'u' loads cover
// text[1, ...) end to end, the last block's 'g' load the end, and text[0] is looked at alone.
constexpr std::size_t kAvx2Width = 32;
constexpr std::size_t kSse2Width = 16;

template <bool kCr>
__attribute__((target("avx2"))) std::size_t ScanAvx2(absl::string_view text,
                                                     bool* carriage_return) {
  const std::size_t n = text.size();
  const char* const data = text.data();
  const __m256i u = _mm256_set1_epi8('u');
  const __m256i g = _mm256_set1_epi8('g');
  const __m256i cr = _mm256_set1_epi8('\r');
  __m256i crs = _mm256_setzero_si256();
  auto load = [data](std::size_t at) __attribute__((target("avx2"))) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + at));
  };
  auto note_cr = [&](__m256i bytes) __attribute__((target("avx2"))) {
    if constexpr (kCr) {
      crs = _mm256_or_si256(crs, _mm256_cmpeq_epi8(bytes, cr));
    }
  };
  auto finish = [&](std::size_t found) __attribute__((target("avx2"))) {
    if constexpr (kCr) {
      if (!_mm256_testz_si256(crs, crs) || data[0] == '\r') {
        *carriage_return = true;
      }
    }
    return found;
  };
  std::size_t at = 0;
  // Two blocks a turn, one test for both: most of a stream has no candidate at all.
  for (; at + 2 * kAvx2Width + 4 <= n; at += 2 * kAvx2Width) {
    const __m256i us0 = load(at + 1);
    const __m256i us1 = load(at + kAvx2Width + 1);
    note_cr(us0);
    note_cr(us1);
    const __m256i c0 =
        _mm256_and_si256(_mm256_cmpeq_epi8(us0, u), _mm256_cmpeq_epi8(load(at + 4), g));
    const __m256i c1 = _mm256_and_si256(_mm256_cmpeq_epi8(us1, u),
                                        _mm256_cmpeq_epi8(load(at + kAvx2Width + 4), g));
    const __m256i any = _mm256_or_si256(c0, c1);
    if (!_mm256_testz_si256(any, any)) {
      const uint64_t mask =
          static_cast<uint32_t>(_mm256_movemask_epi8(c0)) |
          (static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(c1))) << 32);
      if (const std::size_t found = FirstKey(text, at, mask); found != kNpos) {
        return finish(found);
      }
    }
  }
  auto candidates = [&](std::size_t base) __attribute__((target("avx2"))) {
    const __m256i us = load(base + 1);
    const __m256i gs = load(base + 4);
    note_cr(us);
    note_cr(gs);
    return static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(us, u), _mm256_cmpeq_epi8(gs, g))));
  };
  for (; at + kAvx2Width + 4 <= n; at += kAvx2Width) {
    if (const uint32_t mask = candidates(at); mask != 0) {
      if (const std::size_t found = FirstKey(text, at, mask); found != kNpos) {
        return finish(found);
      }
    }
  }
  const std::size_t base = n - kAvx2Width - 4;
  return finish(FirstKey(text, base, candidates(base) & (~uint64_t{0} << (at - base))));
}

template <bool kCr>
std::size_t ScanSse2(absl::string_view text, bool* carriage_return) {
  const std::size_t n = text.size();
  const char* const data = text.data();
  const __m128i u = _mm_set1_epi8('u');
  const __m128i g = _mm_set1_epi8('g');
  const __m128i cr = _mm_set1_epi8('\r');
  __m128i crs = _mm_setzero_si128();
  auto candidates = [&](std::size_t base) {
    const __m128i us = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + base + 1));
    const __m128i gs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + base + 4));
    if constexpr (kCr) {
      crs = _mm_or_si128(crs, _mm_or_si128(_mm_cmpeq_epi8(us, cr), _mm_cmpeq_epi8(gs, cr)));
    }
    return static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(us, u), _mm_cmpeq_epi8(gs, g))));
  };
  auto finish = [&](std::size_t found) {
    if constexpr (kCr) {
      if (_mm_movemask_epi8(crs) != 0 || data[0] == '\r') {
        *carriage_return = true;
      }
    }
    return found;
  };
  std::size_t at = 0;
  for (; at + kSse2Width + 4 <= n; at += kSse2Width) {
    if (const uint32_t mask = candidates(at); mask != 0) {
      if (const std::size_t found = FirstKey(text, at, mask); found != kNpos) {
        return finish(found);
      }
    }
  }
  const std::size_t base = n - kSse2Width - 4;
  return finish(FirstKey(text, base, candidates(base) & (~uint64_t{0} << (at - base))));
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");
#endif

template <bool kCr>
std::size_t Scan(absl::string_view text, bool* carriage_return) {
#if defined(__x86_64__)
  if (kHasAvx2 && text.size() >= kAvx2Width + 4) {
    return ScanAvx2<kCr>(text, carriage_return);
  }
  if (text.size() >= kSse2Width + 4) {
    return ScanSse2<kCr>(text, carriage_return);
  }
#endif
  return ScanBytes(text, kCr ? carriage_return : nullptr);
}

}  // namespace

std::size_t FindUsageKey(absl::string_view text) { return Scan<false>(text, nullptr); }

std::size_t FindUsageKeyNotingCr(absl::string_view text, bool* carriage_return) {
  return Scan<true>(text, carriage_return);
}

}  // namespace spillway
