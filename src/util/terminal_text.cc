#include "util/terminal_text.h"

#include <cstdint>

namespace writ {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendHexByte(uint8_t b, std::string* out) {
  out->append("\\x");
  out->push_back(kHex[b >> 4]);
  out->push_back(kHex[b & 15]);
}

void AppendCodePoint(uint32_t cp, std::string* out) {
  out->append("\\u");
  for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(cp >> shift) & 15]);
}

// Length of the valid UTF-8 sequence at the start of `s` and its code point; 0 when the first byte
// does not begin one (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t DecodeUtf8(absl::string_view s, uint32_t* cp) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf;  // bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    *cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    *cp = c & 0x0f;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    *cp = c & 0x07;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(i) & 0x3f);
  }
  return n;
}

bool IsLayoutControl(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

void AppendTerminalSafe(absl::string_view in, std::string* out) {
  out->reserve(out->size() + in.size());
  size_t i = 0;
  while (i < in.size()) {
    const uint8_t c = static_cast<uint8_t>(in[i]);
    if (c < 0x80) {
      switch (c) {
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            AppendHexByte(c, out);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(in.substr(i), &cp);
    if (n == 0) {
      AppendHexByte(c, out);
      ++i;
    } else if (IsLayoutControl(cp)) {
      AppendCodePoint(cp, out);
      i += n;
    } else {
      out->append(in.data() + i, n);
      i += n;
    }
  }
}

std::string TerminalSafe(absl::string_view in) {
  std::string out;
  AppendTerminalSafe(in, &out);
  return out;
}

bool IsUtf8(absl::string_view in) {
  for (size_t i = 0; i < in.size();) {
    if (static_cast<uint8_t>(in[i]) < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    const size_t n = DecodeUtf8(in.substr(i), &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Utf8Safe(absl::string_view in) {
  std::string out;
  out.reserve(in.size() + 8);
  for (size_t i = 0; i < in.size();) {
    const uint8_t c = static_cast<uint8_t>(in[i]);
    uint32_t cp;
    const size_t n = c < 0x80 ? 1 : DecodeUtf8(in.substr(i), &cp);
    if (n == 0) {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
      i++;
      continue;
    }
    out.append(in.data() + i, n);
    i += n;
  }
  return out;
}

}  // namespace writ
