#include "intent/parse_util.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace writ::intent {

bool ValidParamName(absl::string_view name) {
  if (name.empty() || !(absl::ascii_isalpha(name[0]) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) || c == '_')) return false;
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> ParamRefs(absl::string_view s) {
  std::vector<std::string> out;
  for (size_t i = s.find("${"); i != absl::string_view::npos; i = s.find("${", i)) {
    size_t end = s.find('}', i);
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unterminated \"${\" in \"", s, "\""));
    }
    absl::string_view name = s.substr(i + 2, end - i - 2);
    if (!ValidParamName(name)) {
      return absl::InvalidArgumentError(absl::StrCat("bad parameter name \"${", name, "}\""));
    }
    out.emplace_back(name);
    i = end + 1;
  }
  return out;
}

std::string SubstituteParams(absl::string_view s,
                             const absl::flat_hash_map<std::string, std::string>& values,
                             bool* unset) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = s.find("${", i);
    size_t end = start == absl::string_view::npos ? start : s.find('}', start);
    if (end == absl::string_view::npos) {
      absl::StrAppend(&out, s.substr(i));
      break;
    }
    absl::StrAppend(&out, s.substr(i, start - i));
    auto it = values.find(s.substr(start + 2, end - start - 2));
    if (it == values.end()) {
      *unset = true;
    } else {
      // "/" as a path value followed by "/**" must not produce "//**".
      absl::string_view v = it->second;
      if (!out.empty() && out.back() == '/' && !v.empty() && v[0] == '/') v.remove_prefix(1);
      if (v == "/" && end + 1 < s.size() && s[end + 1] == '/') v = "";
      absl::StrAppend(&out, v);
    }
    i = end + 1;
  }
  return out;
}

absl::Status CheckParamValue(absl::string_view type, absl::string_view v) {
  if (type == "string") return absl::OkStatus();
  if (type == "int") {
    int64_t i;
    if (!absl::SimpleAtoi(v, &i)) {
      return absl::InvalidArgumentError(absl::StrCat("expected int, got \"", v, "\""));
    }
    return absl::OkStatus();
  }
  if (type == "bool") {
    if (v != "true" && v != "false") {
      return absl::InvalidArgumentError(
          absl::StrCat("expected bool (true|false), got \"", v, "\""));
    }
    return absl::OkStatus();
  }
  if (type == "path") {
    if (v.empty() || v[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("expected an absolute path, got \"", v, "\""));
    }
    if (v.find_first_of("*?") != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("path \"", v, "\" contains glob characters (* or ?)"));
    }
    if (v.size() > 1 && v.back() == '/') {
      return absl::InvalidArgumentError(absl::StrCat("path \"", v, "\" has a trailing '/'"));
    }
    for (absl::string_view seg : absl::StrSplit(v.substr(1), '/')) {
      if (v.size() > 1 && (seg.empty() || seg == "." || seg == "..")) {
        return absl::InvalidArgumentError(
            absl::StrCat("path \"", v, "\" is not normalised (empty, '.' or '..' segment)"));
      }
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown type \"", type, "\" (expected path, string, int or bool)"));
}

absl::StatusOr<absl::Duration> ParseDurationStrict(absl::string_view s) {
  absl::Duration d;
  absl::string_view days = s;
  int64_t n;
  if (absl::ConsumeSuffix(&days, "d") && absl::SimpleAtoi(days, &n)) {
    d = absl::Hours(24 * n);
  } else if (!absl::ParseDuration(std::string(s), &d) || s == "inf" || s == "-inf") {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration \"", s, "\" (expected e.g. 45s, 30m, 1h30m, 2d)"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("duration \"", s, "\" must be positive"));
  }
  return d;
}

namespace {
bool ParseHhMm(absl::string_view s, int* minutes) {
  int h, m;
  if (s.size() != 5 || s[2] != ':' || !absl::ascii_isdigit(s[0]) || !absl::ascii_isdigit(s[1]) ||
      !absl::ascii_isdigit(s[3]) || !absl::ascii_isdigit(s[4])) {
    return false;
  }
  h = (s[0] - '0') * 10 + (s[1] - '0');
  m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return false;
  *minutes = h * 60 + m;
  return true;
}
}  // namespace

absl::StatusOr<Hours> ParseHours(absl::string_view s) {
  Hours h;
  std::vector<absl::string_view> parts = absl::StrSplit(s, ' ', absl::SkipEmpty());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad hours window \"", s, "\": ", why, " (expected \"HH:MM-HH:MM [TZ]\")"));
  };
  if (parts.empty() || parts.size() > 2) return bad("wrong number of parts");
  std::vector<absl::string_view> range = absl::StrSplit(parts[0], '-');
  if (range.size() != 2 || !ParseHhMm(range[0], &h.start_min) || !ParseHhMm(range[1], &h.end_min)) {
    return bad("times must be HH:MM, 00:00 to 24:00");
  }
  if (h.start_min == 1440) return bad("start cannot be 24:00");
  if (h.start_min == h.end_min) return bad("empty window");
  if (parts.size() == 2) {
    h.tz = std::string(parts[1]);
    absl::TimeZone tz;
    if (h.tz != "UTC" && !absl::LoadTimeZone(h.tz, &tz)) return bad("unknown time zone");
  }
  return h;
}

absl::StatusOr<Cidr> ParseCidr(absl::string_view s) {
  Cidr c;
  std::string addr(s);
  int max_len;
  int len = -1;
  if (size_t slash = s.find('/'); slash != absl::string_view::npos) {
    addr = std::string(s.substr(0, slash));
    if (!absl::SimpleAtoi(s.substr(slash + 1), &len) || len < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad CIDR \"", s, "\": bad prefix length"));
    }
  }
  if (inet_pton(AF_INET, addr.c_str(), c.addr) == 1) {
    c.family = AF_INET;
    max_len = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr) == 1) {
    c.family = AF_INET6;
    max_len = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("bad CIDR \"", s, "\": \"", addr, "\" is not an IPv4 or IPv6 address"));
  }
  if (len < 0) len = max_len;
  if (len > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad CIDR \"", s, "\": prefix length ", len, " > ", max_len));
  }
  c.prefix_len = static_cast<uint8_t>(len);
  for (int bit = len; bit < max_len; ++bit) {
    if (c.addr[bit / 8] & (0x80 >> (bit % 8))) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CIDR \"", s, "\": host bits set beyond /", len));
    }
  }
  return c;
}

absl::StatusOr<PortRange> ParsePortRange(absl::string_view s) {
  PortRange r;
  std::vector<absl::string_view> p = absl::StrSplit(s, absl::MaxSplits('-', 1));
  int lo, hi;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bad port \"", s, "\": ", why));
  };
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(p[0]), &lo)) return bad("not a number");
  hi = lo;
  if (p.size() == 2 && !absl::SimpleAtoi(absl::StripAsciiWhitespace(p[1]), &hi)) {
    return bad("range end is not a number");
  }
  if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535) return bad("ports are 1..65535");
  if (lo > hi) return bad("range start above its end");
  r.lo = static_cast<uint16_t>(lo);
  r.hi = static_cast<uint16_t>(hi);
  return r;
}

}  // namespace writ::intent
