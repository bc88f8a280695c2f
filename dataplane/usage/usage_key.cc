// See usage_key.h. The forward search, run over every byte of every relayed response, looks
// 64 bytes at a time (AVX2; 16 with SSE2) for the key's 'u' with its 'g' three bytes on, so one
// pass finds the rare places worth comparing: memchr on 'u' alone stopped at every "chunk" and
// "results", a call per stop (~300 instructions per SSE event, callgrind); glibc's memmem
// took ~600.
// The backward search runs once per response, from its end, where usage lies: memrchr on 'u'.
#include "dataplane/usage/usage_key.h"

#include <string.h>

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace spillway {
namespace {

constexpr std::size_t kNpos = absl::string_view::npos;

// The key starting one byte before the 'u' at `u`, if it is there.
bool KeyAround(absl::string_view text, std::size_t u) {
  return text.substr(u - 1, kUsageKey.size()) == kUsageKey;
}

#if defined(__x86_64__)
// Blocks of 64 starts: a candidate is a start whose next byte is 'u' and whose fifth is 'g'.
// Returns the first start not yet ruled out (every earlier one is), or the key's start.
__attribute__((target("avx2"))) std::size_t ScanAvx2(absl::string_view text, std::size_t* at) {
  const std::size_t n = text.size();
  const char* const data = text.data();
  const __m256i u = _mm256_set1_epi8('u');
  const __m256i g = _mm256_set1_epi8('g');
  auto load = [data](std::size_t from) { return reinterpret_cast<const __m256i*>(data + from); };
  for (; *at + 64 + 4 <= n; *at += 64) {
    const __m256i low = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256(load(*at + 1)), u),
                                         _mm256_cmpeq_epi8(_mm256_loadu_si256(load(*at + 4)), g));
    const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256(load(*at + 33)), u),
                                          _mm256_cmpeq_epi8(_mm256_loadu_si256(load(*at + 36)), g));
    if (_mm256_testz_si256(_mm256_or_si256(low, high), _mm256_or_si256(low, high))) {
      continue;
    }
    uint64_t mask = static_cast<uint32_t>(_mm256_movemask_epi8(low)) |
                    static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(high))) << 32;
    for (; mask != 0; mask &= mask - 1) {
      const std::size_t start = *at + static_cast<std::size_t>(__builtin_ctzll(mask));
      if (start + kUsageKey.size() <= n && text.substr(start, kUsageKey.size()) == kUsageKey) {
        return start;
      }
    }
  }
  return kNpos;
}

// The same 16 starts at a time with SSE2, which every x86-64 has.
std::size_t ScanSse2(absl::string_view text, std::size_t* at) {
  const std::size_t n = text.size();
  const char* const data = text.data();
  const __m128i u = _mm_set1_epi8('u');
  const __m128i g = _mm_set1_epi8('g');
  for (; *at + 16 + 4 <= n; *at += 16) {
    const __m128i us = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + *at + 1));
    const __m128i gs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + *at + 4));
    auto mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(us, u), _mm_cmpeq_epi8(gs, g))));
    for (; mask != 0; mask &= mask - 1) {
      const std::size_t start = *at + static_cast<std::size_t>(__builtin_ctz(mask));
      if (start + kUsageKey.size() <= n && text.substr(start, kUsageKey.size()) == kUsageKey) {
        return start;
      }
    }
  }
  return kNpos;
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

std::size_t FindUsageKey(absl::string_view text) {
  std::size_t at = 0;  // every start before `at` has been ruled out
#if defined(__x86_64__)
  if (kHasAvx2) {
    if (const std::size_t found = ScanAvx2(text, &at); found != kNpos) {
      return found;
    }
  }
  if (const std::size_t found = ScanSse2(text, &at); found != kNpos) {
    return found;
  }
#endif
  // The last few starts (all of them elsewhere).
  const char* const data = text.data();
  for (; at + kUsageKey.size() <= text.size(); ++at) {
    if (data[at + 1] == 'u' && text.substr(at, kUsageKey.size()) == kUsageKey) {
      return at;
    }
  }
  return kNpos;
}

std::size_t FindLastUsageKey(absl::string_view text, std::size_t end) {
  if (text.size() < kUsageKey.size()) {
    return kNpos;
  }
  const char* const data = text.data();
  // The 'u' follows the quote, which must lie before `end`; the key must fit.
  std::size_t last_u = std::min(end, text.size() - kUsageKey.size() + 1);
  while (last_u >= 1) {
    const char* u = static_cast<const char*>(memrchr(data + 1, 'u', last_u));
    if (u == nullptr) {
      return kNpos;
    }
    const std::size_t at = static_cast<std::size_t>(u - data);
    if (KeyAround(text, at)) {
      return at - 1;
    }
    last_u = at - 1;
  }
  return kNpos;
}

}  // namespace spillway
