// Value syntaxes shared by the loader (validation) and the compiler (binding): ${param}
// substitution, durations, hours windows, CIDRs, ports. Each returns a status whose message is the
// bare problem; the caller prefixes FILE:LINE: field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace writ::intent {

// Names referenced as ${name} in `s`, in order. Error on "${" without "}" or a bad name.
absl::StatusOr<std::vector<std::string>> ParamRefs(absl::string_view s);
// Replaces each ${name} with values[name]. A name missing from `values` sets *unset (and is
// replaced by nothing); callers drop rules that reference unset optional parameters.
std::string SubstituteParams(absl::string_view s,
                             const absl::flat_hash_map<std::string, std::string>& values,
                             bool* unset);

bool ValidParamName(absl::string_view name);
// Type-checks a parameter value: path (absolute, normalised, no glob characters), string, int,
// bool.
absl::Status CheckParamValue(absl::string_view type, absl::string_view value);

// "30m", "1h30m", "45s", "2d": positive.
absl::StatusOr<absl::Duration> ParseDurationStrict(absl::string_view s);

struct Hours {
  int start_min = 0;
  int end_min = 1440;
  std::string tz = "UTC";
};
// "HH:MM-HH:MM [TZ]" (TZ: UTC or an IANA name); end <= start wraps midnight; start == end is empty.
absl::StatusOr<Hours> ParseHours(absl::string_view s);

struct Cidr {
  int family = 0;  // AF_INET / AF_INET6
  uint8_t addr[16] = {};
  uint8_t prefix_len = 0;
};
// "10.0.0.0/8", "::1/128", or a bare address (full-length prefix). Host bits must be zero.
absl::StatusOr<Cidr> ParseCidr(absl::string_view s);

struct PortRange {
  uint16_t lo = 1;
  uint16_t hi = 65535;
};
// "443" or "9000-9100", 1..65535, lo <= hi.
absl::StatusOr<PortRange> ParsePortRange(absl::string_view s);

}  // namespace writ::intent
