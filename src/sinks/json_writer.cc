#include "sinks/json_writer.h"

#include <array>

namespace writ::sinks {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendEscapedByte(unsigned char b, std::string* out) {
  char buf[6] = {'\\', 'u', '0', '0', kHex[b >> 4], kHex[b & 0xf]};
  out->append(buf, sizeof(buf));
}

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

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  AppendJsonStringBody(s, out);
  out->push_back('"');
}

// Printable ASCII other than '"' and '\\': copied as is. One table load per byte on the common path.
constexpr std::array<bool, 256> kVerbatim = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

void AppendJsonStringBody(std::string_view s, std::string* out) {
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kVerbatim[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      const size_t n = ValidUtf8Len(s, i);
      if (n != 0) {
        i += n;
        continue;
      }
    }
    out->append(s.data() + run, i - run);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default: AppendEscapedByte(c, out); break;  // control byte or invalid UTF-8 byte
    }
    ++i;
    run = i;
  }
  out->append(s.data() + run, s.size() - run);
}

}  // namespace writ::sinks
