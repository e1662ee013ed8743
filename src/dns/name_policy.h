// Name patterns of the policy language (docs/policy.md "Hosts and DNS"): an exact name
// ("api.example.com") or a wildcard "*.example.com" that matches one or more labels in front of
// example.com (a.example.com, a.b.example.com) but not example.com itself. Matching is on
// normalized names (message.h NormalizeName). A NamePolicy is the per-task list the stub resolver
// consults: deny patterns win over allow patterns; a name matched by neither is refused.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace writ::dns {

class NamePattern {
 public:
  // "*" alone, "*" inside a label or a wildcard over a single label ("*.com" is allowed: the
  // operator asked for it; "*" is not, it would allow every name) are errors.
  static absl::StatusOr<NamePattern> Parse(absl::string_view text);
  // Every name ("*"): a task whose intent says nothing about names (writd's stub still answers
  // it, and reports each query). Never produced by Parse.
  static NamePattern Any();
  bool Matches(absl::string_view normalized_name) const;
  // True when every name this pattern matches is matched by `outer` too (sub-agent subset checks).
  bool CoveredBy(const NamePattern& outer) const;
  bool wildcard() const { return wildcard_; }
  const std::string& text() const { return text_; }  // as normalized: "*.example.com" or the name

 private:
  bool wildcard_ = false;
  std::string suffix_;  // wildcard: ".example.com"; exact: the name
  std::string text_;
};

class NamePolicy {
 public:
  void Allow(NamePattern p) { allow_.push_back(std::move(p)); }
  void Deny(NamePattern p) { deny_.push_back(std::move(p)); }
  // The matching allow pattern's text, or nullptr when the name is denied or not allowed.
  const NamePattern* Match(absl::string_view normalized_name) const;
  const std::vector<NamePattern>& allow() const { return allow_; }
  const std::vector<NamePattern>& deny() const { return deny_; }

 private:
  std::vector<NamePattern> allow_;
  std::vector<NamePattern> deny_;
};

}  // namespace writ::dns
