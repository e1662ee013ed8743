// SPIFFE ID validation per the SPIFFE ID specification (spiffe://trust-domain/path).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace writ::identity {

struct SpiffeId {
  std::string trust_domain;
  std::string path;  // "" or "/seg/seg"
  std::string ToString() const { return "spiffe://" + trust_domain + path; }
};

// Rejects, with a message naming the rule broken: wrong or uppercase scheme, empty trust domain,
// characters outside [a-z0-9.-_] in the trust domain (so also ports, userinfo, uppercase), a path
// segment that is empty, "." or ".." or holds characters outside [a-zA-Z0-9.-_], a trailing slash,
// a query or fragment, and IDs longer than 2048 bytes.
absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view s);

}  // namespace writ::identity
