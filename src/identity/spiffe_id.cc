#include "identity/spiffe_id.h"

#include "absl/strings/str_cat.h"

namespace writ::identity {
namespace {

bool TrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}
bool PathChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}
absl::Status Bad(absl::string_view id, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid SPIFFE ID \"", id, "\": ", why));
}

}  // namespace

absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view s) {
  constexpr absl::string_view kScheme = "spiffe://";
  if (s.empty()) return Bad(s, "empty");
  if (s.size() > 2048) return Bad(s.substr(0, 64), "longer than 2048 bytes");
  if (s.substr(0, kScheme.size()) != kScheme) {
    return Bad(s, "must start with spiffe:// (lowercase scheme)");
  }
  absl::string_view rest = s.substr(kScheme.size());
  if (rest.find_first_of("?#") != absl::string_view::npos) {
    return Bad(s, "query and fragment are not allowed");
  }
  size_t slash = rest.find('/');
  absl::string_view td = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash);
  if (td.empty()) return Bad(s, "empty trust domain");
  if (td.size() > 255) return Bad(s, "trust domain longer than 255 bytes");
  for (char c : td) {
    if (c == ':') return Bad(s, "a port is not allowed in the trust domain");
    if (c == '@') return Bad(s, "userinfo is not allowed in the trust domain");
    if (c >= 'A' && c <= 'Z') return Bad(s, "trust domain must be lowercase");
    if (!TrustDomainChar(c)) {
      return Bad(s, absl::StrCat("character '", std::string(1, c),
                                 "' not allowed in trust domain (a-z 0-9 . - _)"));
    }
  }
  if (!path.empty()) {
    if (path.back() == '/') return Bad(s, "trailing slash in path");
    size_t i = 1;  // path[0] == '/'
    while (i <= path.size()) {
      size_t end = path.find('/', i);
      if (end == absl::string_view::npos) end = path.size();
      absl::string_view seg = path.substr(i, end - i);
      if (seg.empty()) return Bad(s, "empty path segment (//)");
      if (seg == "." || seg == "..") return Bad(s, "path segments . and .. are not allowed");
      for (char c : seg) {
        if (!PathChar(c)) {
          return Bad(s, absl::StrCat("character '", std::string(1, c),
                                     "' not allowed in path (a-z A-Z 0-9 . - _)"));
        }
      }
      i = end + 1;
    }
  }
  return SpiffeId{std::string(td), std::string(path)};
}

}  // namespace writ::identity
