#include "creds/redact.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

namespace writ::creds {
namespace {

using Span = std::pair<size_t, size_t>;  // [begin, end)

bool IsB64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}
bool IsUpperAlnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsUpperAlnum(c) || (c >= 'a' && c <= 'z'); }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsKeyChar(char c) { return IsAlnum(c) || c == '_' || c == '-' || c == '.'; }
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Case-insensitive find of a lower-case needle.
size_t FindCi(std::string_view hay, std::string_view needle, size_t from) {
  if (needle.empty() || hay.size() < needle.size()) return std::string_view::npos;
  for (size_t i = from; i + needle.size() <= hay.size(); ++i) {
    if (Lower(hay[i]) != needle[0]) continue;
    size_t k = 1;
    while (k < needle.size() && Lower(hay[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

bool ContainsCi(std::string_view hay, std::string_view needle) { return FindCi(hay, needle, 0) != std::string_view::npos; }

void Jwts(std::string_view s, std::vector<Span>* out) {
  for (size_t i = s.find("eyJ"); i != std::string_view::npos; i = s.find("eyJ", i + 1)) {
    if (i > 0 && IsB64Url(s[i - 1])) continue;
    size_t p = i;
    int dots = 0;
    size_t seg_len = 0;
    bool ok = true;
    while (p < s.size() && (IsB64Url(s[p]) || s[p] == '.')) {
      if (s[p] == '.') {
        if (seg_len == 0) {
          ok = false;
          break;
        }
        if (dots == 2) break;  // a sentence's full stop after the signature ends the token
        ++dots;
        seg_len = 0;
      } else {
        ++seg_len;
      }
      ++p;
    }
    // header.payload.signature: both dots present and a non-empty payload
    if (ok && dots == 2) {
      out->emplace_back(i, p);
      i = p;
    }
  }
}

void Authorization(std::string_view s, std::vector<Span>* out) {
  constexpr std::string_view kKey = "authorization:";
  for (size_t i = FindCi(s, kKey, 0); i != std::string_view::npos; i = FindCi(s, kKey, i + 1)) {
    size_t b = i + kKey.size();
    while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
    size_t e = b;
    while (e < s.size() && s[e] != '\n' && s[e] != '\r' && s[e] != '"' && s[e] != '\'') ++e;
    if (e > b) out->emplace_back(b, e);
  }
}

void Bearer(std::string_view s, std::vector<Span>* out) {
  constexpr std::string_view kKey = "bearer ";
  for (size_t i = FindCi(s, kKey, 0); i != std::string_view::npos; i = FindCi(s, kKey, i + 1)) {
    if (i > 0 && IsAlnum(s[i - 1])) continue;
    size_t b = i + kKey.size();
    while (b < s.size() && s[b] == ' ') ++b;
    size_t e = b;
    while (e < s.size() && !IsSpace(s[e]) && s[e] != '"' && s[e] != '\'' && s[e] != ',') ++e;
    if (e > b) out->emplace_back(b, e);
  }
}

void AwsKeys(std::string_view s, std::vector<Span>* out) {
  for (size_t i = s.find('A'); i != std::string_view::npos; i = s.find('A', i + 1)) {
    if (i + 20 > s.size()) break;
    if (!(s.compare(i, 4, "AKIA") == 0 || s.compare(i, 4, "ASIA") == 0)) continue;
    if (i > 0 && IsAlnum(s[i - 1])) continue;
    size_t k = i + 4;
    while (k < i + 20 && IsUpperAlnum(s[k])) ++k;
    if (k != i + 20 || (k < s.size() && IsAlnum(s[k]))) continue;
    out->emplace_back(i, k);
    i = k - 1;
  }
}

void UrlPasswords(std::string_view s, std::vector<Span>* out) {
  for (size_t i = s.find("://"); i != std::string_view::npos; i = s.find("://", i + 3)) {
    size_t b = i + 3;
    size_t e = b;
    while (e < s.size() && s[e] != '/' && s[e] != '?' && s[e] != '#' && !IsSpace(s[e]) && s[e] != '"' &&
           s[e] != '\'') {
      ++e;
    }
    std::string_view authority = s.substr(b, e - b);
    size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    size_t colon = authority.substr(0, at).find(':');
    if (colon == std::string_view::npos || colon + 1 == at) continue;
    out->emplace_back(b + colon + 1, b + at);
  }
}

void KeyValues(std::string_view s, std::vector<Span>* out) {
  static constexpr std::string_view kWords[] = {"password", "passwd", "secret", "token", "api_key",
                                                "apikey", "access_key", "private_key", "credential"};
  for (size_t eq = s.find('='); eq != std::string_view::npos; eq = s.find('=', eq + 1)) {
    size_t kb = eq;
    while (kb > 0 && IsKeyChar(s[kb - 1])) --kb;
    std::string_view key = s.substr(kb, eq - kb);
    if (key.empty()) continue;
    bool secret = false;
    for (auto w : kWords) secret = secret || ContainsCi(key, w);
    if (!secret) continue;
    size_t b = eq + 1;
    size_t e = b;
    if (b < s.size() && (s[b] == '"' || s[b] == '\'')) {
      char q = s[b++];
      e = b;
      while (e < s.size() && s[e] != q) ++e;
    } else {
      while (e < s.size() && !IsSpace(s[e]) && s[e] != '&' && s[e] != ';' && s[e] != ',' && s[e] != '"' &&
             s[e] != '\'') {
        ++e;
      }
    }
    if (e > b) out->emplace_back(b, e);
  }
}

}  // namespace

void RedactSecrets(std::string* s) {
  if (s == nullptr || s->empty()) return;
  std::string_view v(*s);
  std::vector<Span> spans;
  Jwts(v, &spans);
  Authorization(v, &spans);
  Bearer(v, &spans);
  AwsKeys(v, &spans);
  UrlPasswords(v, &spans);
  KeyValues(v, &spans);
  if (spans.empty()) return;
  std::sort(spans.begin(), spans.end());
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  for (size_t i = 0; i < spans.size();) {
    size_t b = spans[i].first;
    size_t e = spans[i].second;
    // Merge overlapping or touching spans so one secret yields one marker.
    for (++i; i < spans.size() && spans[i].first <= e; ++i) e = std::max(e, spans[i].second);
    if (b < pos) b = pos;
    out.append(v.substr(pos, b - pos));
    out.append(kRedacted);
    pos = std::max(pos, e);
  }
  out.append(v.substr(pos));
  *s = std::move(out);
}

}  // namespace writ::creds
