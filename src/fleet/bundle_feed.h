// Policy bundles across the fleet (issue #19 item 4; docs/fleet.md "Policy bundles"): the signed
// bundle envelope in a replicated JetStream key-value bucket (default `writ_policy`, key `bundle`,
// history 1), put there by `writ policy apply --fleet` on any admin host, and read by every writd.
// NATS is transport only: each host verifies the signature, the version and the whole set itself
// (daemon::PolicyBundles), so a value written by anyone with publish rights to the bucket changes
// nothing unless a trusted key signed it.
//
// Every `poll` the feed reads the key's latest revision; a revision it has not handled is applied.
// Reading the latest value (not a stream of changes) is what a partitioned host needs: when the
// link is back, its next read is the newest bundle, whatever it missed in between.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fleet/link.h"

namespace writ::fleet {

struct BundleFeedOptions {
  std::string bucket = "writ_policy";
  int replicas = 1;  // of the bucket, when this host creates it (the cluster's size, at most 5)
  absl::Duration poll = absl::Milliseconds(250);
  // Publish retries this long while the cluster elects leaders (after a node was lost).
  absl::Duration publish_timeout = absl::Seconds(20);
};

struct BundleFeedStats {
  uint64_t revision = 0;     // the last revision of the key handled (applied or refused)
  uint64_t applied = 0;      // revisions put in force here
  uint64_t refused = 0;      // revisions this host's checks refused (signature, version, intents)
  uint64_t read_errors = 0;  // reads that failed (a timeout; no bucket and no right to create it)
  std::string last_error;
};

class BundleFeed {
 public:
  // Applies an envelope; `who` names the source for the log. A refusal is permanent for that
  // revision (it is not retried), except kInternal/kUnavailable/kDeadlineExceeded (disk, timeout).
  using Apply = std::function<absl::Status(const std::string& envelope, const std::string& who)>;

  BundleFeed(Link& link, BundleFeedOptions options, Apply apply);
  ~BundleFeed();
  BundleFeed(const BundleFeed&) = delete;
  BundleFeed& operator=(const BundleFeed&) = delete;

  void Start();
  void Stop();
  // Puts an envelope into the bucket (creating the bucket if there is none); returns its revision.
  // The caller has verified and applied it locally first.
  absl::StatusOr<uint64_t> Publish(const std::string& envelope);
  BundleFeedStats stats() const;

 private:
  void Run();
  void PollOnce();
  // Binds the bucket on the link's current connection, creating it when `create` and it is missing.
  absl::Status WithBucket(bool create, const std::function<absl::Status(kvStore*)>& fn);

  Link& link_;
  const BundleFeedOptions options_;
  const Apply apply_;
  mutable absl::Mutex mu_;
  BundleFeedStats stats_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace writ::fleet
