#include "dns/name_policy.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dns/message.h"

namespace writ::dns {

absl::StatusOr<NamePattern> NamePattern::Parse(absl::string_view text) {
  NamePattern p;
  absl::string_view rest = text;
  if (absl::StartsWith(rest, "*.")) {
    p.wildcard_ = true;
    rest.remove_prefix(2);
  } else if (rest.find('*') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad name pattern \"", text, "\": '*' only as the whole first label (*.example.com)"));
  }
  auto n = NormalizeName(rest);
  if (!n.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad name \"", text, "\": ", n.status().message()));
  }
  p.suffix_ = p.wildcard_ ? absl::StrCat(".", *n) : *n;
  p.text_ = p.wildcard_ ? absl::StrCat("*.", *n) : *n;
  return p;
}

NamePattern NamePattern::Any() {
  NamePattern p;
  p.wildcard_ = true;  // suffix "": every non-empty name ends with it
  p.text_ = "*";
  return p;
}

bool NamePattern::Matches(absl::string_view name) const {
  if (!wildcard_) return name == suffix_;
  return name.size() > suffix_.size() && absl::EndsWith(name, suffix_);
}

bool NamePattern::CoveredBy(const NamePattern& outer) const {
  if (!outer.wildcard_) return !wildcard_ && suffix_ == outer.suffix_;
  // outer *.x covers exact names and wildcards strictly below x (".a.x" ends with ".x").
  if (!wildcard_) return outer.Matches(suffix_);
  return absl::EndsWith(suffix_, outer.suffix_);
}

const NamePattern* NamePolicy::Match(absl::string_view name) const {
  for (const NamePattern& d : deny_) {
    if (d.Matches(name)) return nullptr;
  }
  for (const NamePattern& a : allow_) {
    if (a.Matches(name)) return &a;
  }
  return nullptr;
}

}  // namespace writ::dns
