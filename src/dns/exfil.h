// Exfiltration-shaped DNS queries (docs/threat-model.md "DNS"): data smuggled out in query names
// shows up as very long labels, long high-entropy labels, or many distinct subdomains of one domain
// in a short time. The detector is per task, bounded in memory (a capped set of names per domain
// per window, a capped number of domains), and reports each domain's burst once per window.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace writ::dns {

struct ExfilConfig {
  size_t long_label = 48;          // a label this long or longer is a finding
  size_t entropy_min_len = 20;     // labels at least this long are entropy-checked
  double entropy_bits = 3.8;       // Shannon bits per character at or above this is a finding
  size_t long_name = 180;          // total name length
  size_t unique_per_window = 100;  // distinct names under one domain per window
  absl::Duration window = absl::Minutes(1);
  size_t max_domains = 1024;  // tracked domains per task (then the window is reset early)
};

struct ExfilFinding {
  std::string kind;  // "long_label", "high_entropy_label", "long_name", "many_subdomains"
  std::string domain;
  std::string detail;
};

// Shannon entropy of the characters of s, in bits per character.
double Entropy(absl::string_view s);
// The last two labels ("example.com" of "a.b.example.com"); a public-suffix list is not consulted.
absl::string_view BaseDomain(absl::string_view name);

class ExfilDetector {
 public:
  explicit ExfilDetector(ExfilConfig c = {}) : c_(c) {}
  std::vector<ExfilFinding> Observe(absl::string_view name, absl::Time now);

 private:
  struct Domain {
    absl::flat_hash_set<uint64_t> names;
    bool reported = false;
  };
  ExfilConfig c_;
  absl::Time window_start_ = absl::InfinitePast();
  absl::flat_hash_map<std::string, Domain> domains_;
};

}  // namespace writ::dns
