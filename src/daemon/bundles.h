// Signed policy bundles in writd (docs/policy.md, "Signed policy bundles"): a bundle signed by a
// key of policy_bundles.public_keys is verified, written to <state_dir>/bundles/v<N>-<sha>/, loaded
// and checked whole on the pipeline thread by the same path as `writ policy reload`
// (PolicyStore::SwitchAndWait), and only then put in force and recorded in
// <state_dir>/bundles/current, so a restart comes back to it. A bad signature, an older version
// (a replay), or an intent that does not load is refused with the reason: the set in force stays.
//
// Threads: Apply from control threads (one at a time: mu_); State from any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/policies.h"
#include "intent/bundle.h"
#include "writ/v1/api.pb.h"

namespace writ::daemon {

class PolicyBundles {
 public:
  PolicyBundles(std::string state_dir, std::vector<intent::BundleKey> keys, PolicyStore& store);

  // At start, before PolicyStore::Load: when a bundle was in force, verifies it again (signature,
  // and the files on disk against it) and points the store at its directory. An error means writd
  // must not start: the bundle no longer verifies (a key was removed, a file was changed).
  absl::Status Restore();

  // Verifies and puts a bundle in force; `who` is for the log. Returns the state now in force.
  // Errors: FailedPrecondition (no keys configured), PermissionDenied (signature), InvalidArgument
  // (envelope, version, intents: FILE:LINE: field: message), Internal (disk).
  absl::StatusOr<v1::PolicyBundleState> Apply(const std::string& envelope, const std::string& who);

  v1::PolicyBundleState State() const;
  bool enabled() const { return !keys_.empty(); }

 private:
  absl::Status Refused(absl::Status st) ABSL_LOCKS_EXCLUDED(mu_);
  std::string BundleDir(const intent::Bundle& b) const;

  const std::string root_;  // <state_dir>/bundles
  const std::vector<intent::BundleKey> keys_;
  PolicyStore& store_;
  // apply_mu_ serialises Apply (held across the load on the pipeline thread); mu_ guards only the
  // state, so `writ status` and /metrics never wait for a bundle being applied.
  absl::Mutex apply_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  v1::PolicyBundleState state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace writ::daemon
