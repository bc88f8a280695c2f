// See usage_key.h. The forward search, run over every byte of every relayed response, looks
// 32 bytes at a time (AVX2; 16 with SSE2) for the key's 'u' with its 'g' three bytes on, so one
// pass finds the rare places worth comparing: memchr on 'u' alone stopped at every "chunk" and
// "results", a call per stop (~300 instructions per SSE event, callgrind); glibc's memmem
// took ~600.
#include "dataplane/usage/usage_key.h"

#include <cstdint>

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
std::size_t ScanBytes(absl::string_view text) {
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
constexpr std::size_t kAvx2Width = 32;
constexpr std::size_t kSse2Width = 16;

__attribute__((target("avx2"))) std::size_t ScanAvx2(absl::string_view text) {
  const std::size_t n = text.size();
  const char* const data = text.data();
  const __m256i u = _mm256_set1_epi8('u');
  const __m256i g = _mm256_set1_epi8('g');
  auto candidates = [&](std::size_t base) __attribute__((target("avx2"))) {
    const __m256i us = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + base + 1));
    const __m256i gs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + base + 4));
    return static_cast<uint32_t>(
        _mm256_movemask_epi8(_mm256_and_si256(_mm256_cmpeq_epi8(us, u), _mm256_cmpeq_epi8(gs, g))));
  };
  std::size_t at = 0;
  for (; at + kAvx2Width + 4 <= n; at += kAvx2Width) {
    if (const uint32_t mask = candidates(at); mask != 0) {
      if (const std::size_t found = FirstKey(text, at, mask); found != kNpos) {
        return found;
      }
    }
  }
  const std::size_t base = n - kAvx2Width - 4;
  return FirstKey(text, base, candidates(base) & (~uint64_t{0} << (at - base)));
}

std::size_t ScanSse2(absl::string_view text) {
  const std::size_t n = text.size();
  const char* const data = text.data();
  const __m128i u = _mm_set1_epi8('u');
  const __m128i g = _mm_set1_epi8('g');
  auto candidates = [&](std::size_t base) {
    const __m128i us = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + base + 1));
    const __m128i gs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + base + 4));
    return static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(us, u), _mm_cmpeq_epi8(gs, g))));
  };
  std::size_t at = 0;
  for (; at + kSse2Width + 4 <= n; at += kSse2Width) {
    if (const uint32_t mask = candidates(at); mask != 0) {
      if (const std::size_t found = FirstKey(text, at, mask); found != kNpos) {
        return found;
      }
    }
  }
  const std::size_t base = n - kSse2Width - 4;
  return FirstKey(text, base, candidates(base) & (~uint64_t{0} << (at - base)));
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

std::size_t FindUsageKey(absl::string_view text) {
#if defined(__x86_64__)
  if (kHasAvx2 && text.size() >= kAvx2Width + 4) {
    return ScanAvx2(text);
  }
  if (text.size() >= kSse2Width + 4) {
    return ScanSse2(text);
  }
#endif
  return ScanBytes(text);
}

}  // namespace spillway
