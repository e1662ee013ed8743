// The `fleet:` section of writd.yaml (docs/fleet.md): where the NATS cluster is and how this host
// proves who it is. Absent: writd is a single host, exactly as without this module.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "fleet/link.h"

namespace YAML {
class Node;
}

namespace writ::fleet {

struct FleetConfig {
  bool enabled = false;  // a fleet: section was given
  LinkOptions link;      // servers, name (default: this host's name), credentials, tls
  // Features on this host: `events` (the nats sink, configured under sinks:) and `bundles` (signed
  // policy bundles through the `writ_policy` key-value bucket, fleet/bundle_feed.h; needs
  // policy_bundles.public_keys); revocations and approvals are named by issue #19 but not built,
  // and refused.
  std::vector<std::string> features;
  bool has(const std::string& feature) const {
    for (const std::string& f : features) {
      if (f == feature) return true;
    }
    return false;
  }
};

// Parses `v` (the value of `fleet:`). Errors: "FILE:LINE: fleet.FIELD: message". Unknown keys are
// errors; credential and certificate files resolve against FILE's directory and must be readable
// now.
absl::Status ParseFleetConfig(const std::string& file, const YAML::Node& v, FleetConfig* out);

// This host's name (gethostname), the default fleet name.
std::string HostName();

}  // namespace writ::fleet
