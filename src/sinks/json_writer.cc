#include "sinks/json_writer.h"

#include <algorithm>
#include <array>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace writ::sinks {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at s[i] (2..4), or 0 when the bytes there are not
// valid UTF-8 (bad lead byte, truncated, overlong, surrogate, or beyond U+10FFFF).
size_t ValidUtf8Len(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const size_t left = s.size() - i;
  auto cont = [&](size_t k) { return (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) return (left >= 2 && cont(1)) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3 || !cont(1) || !cont(2)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;  // 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF
}

#ifdef __SSE2__
// Bit k set when byte k of the 16 at p needs more than a verbatim copy: one signed compare catches
// both control bytes (< 0x20) and bytes >= 0x80 (negative as signed).
inline unsigned SpecialMask(const char* p) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i special = _mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
      _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
  return static_cast<unsigned>(_mm_movemask_epi8(special));
}
#endif

// Index of the first byte at or after i that is not printable ASCII other than '"' and '\\'
// (s.size() when there is none): everything before it is copied as is. Sixteen bytes per step where
// SSE2 is available. The last partial block is checked with one load too: the 16 bytes ending at
// the end of s when s is that long (bits before i masked off: those bytes were accepted already,
// valid UTF-8 included), else a zero-padded copy. Never reads outside s.
size_t SkipVerbatim(std::string_view s, size_t i) {
  const size_t n = s.size();
#ifdef __SSE2__
  while (i + 16 <= n) {
    const unsigned mask = SpecialMask(s.data() + i);
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
    i += 16;
  }
  if (i == n) return n;
  if (n >= 16) {
    const size_t base = n - 16;
    const unsigned mask = SpecialMask(s.data() + base) & (~0u << (i - base));
    return mask != 0 ? base + static_cast<size_t>(__builtin_ctz(mask)) : n;
  }
  alignas(16) char pad[16] = {};
  std::memcpy(pad, s.data(), n);
  const unsigned mask = SpecialMask(pad) & ((1u << n) - 1) & (~0u << i);
  return mask != 0 ? static_cast<size_t>(__builtin_ctz(mask)) : n;
#else
  // Printable ASCII other than '"' and '\\' is copied as is: one table load per byte.
  static constexpr std::array<bool, 256> kVerbatim = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
    return t;
  }();
  while (i < n && kVerbatim[static_cast<unsigned char>(s[i])]) ++i;
  return i;
#endif
}

}  // namespace

char* WriteDecimal(char* p, uint64_t v) {
  static constexpr uint64_t kPow10[20] = {1ull,
                                          10ull,
                                          100ull,
                                          1000ull,
                                          10000ull,
                                          100000ull,
                                          1000000ull,
                                          10000000ull,
                                          100000000ull,
                                          1000000000ull,
                                          10000000000ull,
                                          100000000000ull,
                                          1000000000000ull,
                                          10000000000000ull,
                                          100000000000000ull,
                                          1000000000000000ull,
                                          10000000000000000ull,
                                          100000000000000000ull,
                                          1000000000000000000ull,
                                          10000000000000000000ull};
  static constexpr std::array<char, 200> kPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
      t[2 * i] = static_cast<char>('0' + i / 10);
      t[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
    return t;
  }();
  // floor(log10(v)) is t or t - 1 for t = bit length * log10(2) (1233 / 4096), so one compare fixes
  // it.
  const int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;
  const int n = v < 10 ? 1 : t + (v >= kPow10[t] ? 1 : 0);
  char* q = p + n;
  while (v >= 100) {
    const uint64_t r = v % 100;
    v /= 100;
    q -= 2;
    std::memcpy(q, kPairs.data() + 2 * r, 2);
  }
  if (v >= 10) {
    q -= 2;
    std::memcpy(q, kPairs.data() + 2 * v, 2);
  } else {
    *--q = static_cast<char>('0' + v);
  }
  return p + n;
}

void JsonOut::Grow(size_t n) {
  // Called with the string's size at end_ (>= the cursor). Grow by at least a chunk so that an
  // event takes one or two resizes, but never past the capacity the caller gave when that suffices:
  // once the string has capacity, encoding allocates nothing.
  constexpr size_t kChunk = 1024;
  const size_t used = size();
  const size_t cap = s_->capacity();
  size_t want = used + std::max(n, kChunk);
  if (used + n <= cap) want = std::min(want, cap);
  s_->resize(want);
  p_ = s_->data() + used;
  end_ = s_->data() + s_->size();
}

void JsonOut::Escaped(std::string_view s) {
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  size_t i = 0;
  for (;;) {
    i = SkipVerbatim(s, i);
    if (i >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = ValidUtf8Len(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    // One byte to escape: flush the run, then at most 6 bytes.
    char* p = Ensure(i - run + 6);
    std::memcpy(p, s.data() + run, i - run);
    p += i - run;
    *p++ = '\\';
    switch (c) {
      case '"':
        *p++ = '"';
        break;
      case '\\':
        *p++ = '\\';
        break;
      case '\n':
        *p++ = 'n';
        break;
      case '\r':
        *p++ = 'r';
        break;
      case '\t':
        *p++ = 't';
        break;
      case '\b':
        *p++ = 'b';
        break;
      case '\f':
        *p++ = 'f';
        break;
      default:  // control byte or invalid UTF-8 byte: the raw byte as a code point
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 0xf];
        break;
    }
    Advance(p);
    ++i;
    run = i;
  }
  if (run < s.size()) Put(s.data() + run, s.size() - run);
}

void AppendJsonString(std::string_view s, std::string* out) {
  JsonOut o(out);
  o.Put('"');
  o.Escaped(s);
  o.Put('"');
}

void AppendJsonStringBody(std::string_view s, std::string* out) {
  JsonOut o(out);
  o.Escaped(s);
}

}  // namespace writ::sinks
