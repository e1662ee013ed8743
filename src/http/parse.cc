#include "http/parse.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace writ::http {
namespace {

absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

absl::StatusOr<std::string> UrlDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= s.size() || !absl::ascii_isxdigit(s[i + 1]) || !absl::ascii_isxdigit(s[i + 2])) {
        return absl::InvalidArgumentError(absl::StrCat("bad %-escape at offset ", i));
      }
      auto hex = [](char h) { return h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10; };
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(pos, amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      auto k = UrlDecode(pair.substr(0, eq));
      auto v = UrlDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      if (!k.ok()) return k.status();
      if (!v.ok()) return v.status();
      out[*k] = *v;
    }
    pos = amp + 1;
  }
  return out;
}

bool HostAllowed(std::string_view host, const std::vector<std::string>& names, int port) {
  std::string_view name = host;
  std::string_view port_part;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(0, close + 1);  // names keep IPv6 literals bracketed
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port_part = rest.substr(1);
    }
  } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port_part = host.substr(colon + 1);
  }
  if (!port_part.empty() || host.size() != name.size()) {
    int p = 0;
    if (port_part.empty() || port_part.size() > 5 || !absl::SimpleAtoi(AV(port_part), &p) ||
        !absl::ascii_isdigit(port_part.front()) || p != port) {
      return false;
    }
  }
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // "localhost." is localhost
  if (name.empty()) return false;
  for (const auto& n : names) {
    if (absl::EqualsIgnoreCase(n, AV(name))) return true;
  }
  return false;
}

}  // namespace writ::http
