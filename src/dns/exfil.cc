#include "dns/exfil.h"

#include <cmath>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace writ::dns {

double Entropy(absl::string_view s) {
  if (s.empty()) return 0;
  size_t count[256] = {};
  for (unsigned char c : s) ++count[c];
  double h = 0;
  for (size_t n : count) {
    if (n == 0) continue;
    double p = static_cast<double>(n) / s.size();
    h -= p * std::log2(p);
  }
  return h;
}

absl::string_view BaseDomain(absl::string_view name) {
  size_t last = name.rfind('.');
  if (last == absl::string_view::npos || last == 0) return name;
  size_t prev = name.rfind('.', last - 1);
  return prev == absl::string_view::npos ? name : name.substr(prev + 1);
}

std::vector<ExfilFinding> ExfilDetector::Observe(absl::string_view name, absl::Time now) {
  std::vector<ExfilFinding> out;
  const std::string domain(BaseDomain(name));
  if (name.size() >= c_.long_name) {
    out.push_back({"long_name", domain, absl::StrCat("name of ", name.size(), " characters")});
  }
  absl::string_view sub =
      name.size() > domain.size() ? name.substr(0, name.size() - domain.size()) : "";
  for (absl::string_view label : absl::StrSplit(sub, '.', absl::SkipEmpty())) {
    if (label.size() >= c_.long_label) {
      out.push_back({"long_label", domain, absl::StrCat("label of ", label.size(), " characters")});
      break;
    }
    if (label.size() >= c_.entropy_min_len) {
      double h = Entropy(label);
      if (h >= c_.entropy_bits) {
        out.push_back(
            {"high_entropy_label", domain,
             absl::StrFormat("label of %d characters, %.2f bits/character", label.size(), h)});
        break;
      }
    }
  }
  if (now - window_start_ >= c_.window || domains_.size() >= c_.max_domains) {
    domains_.clear();
    window_start_ = now;
  }
  Domain& d = domains_[domain];
  if (d.names.size() <= c_.unique_per_window) d.names.insert(absl::HashOf(name));
  if (!d.reported && d.names.size() > c_.unique_per_window) {
    d.reported = true;
    out.push_back({"many_subdomains", domain,
                   absl::StrCat("more than ", c_.unique_per_window, " distinct names in ",
                                absl::FormatDuration(c_.window))});
  }
  return out;
}

}  // namespace writ::dns
