// Signing keys for JWT-SVIDs: generated (P-256), stored 0600 as PEM under <state_dir>/keys/, named
// by their RFC 7638 thumbprint (the `kid`). Rotation on a schedule with overlap: a retired key
// stays in the JWKS until every token it could have signed has expired (rotation time + max token
// TTL + skew), then it is deleted. The JWKS is also written to <state_dir>/jwks.json for verifiers
// that read files.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "creds/jwt.h"

namespace writ::creds {

using Clock = std::function<absl::Time()>;

struct KeyStoreOptions {
  std::string state_dir;
  absl::Duration rotation_period = absl::Hours(24);
  // Longest lifetime of a token signed by any key: a retired key is kept this long (+ skew).
  absl::Duration max_token_ttl = absl::Minutes(5);
  absl::Duration skew = absl::Minutes(1);
  Clock clock;  // defaults to absl::Now
};

struct SigningKey {
  std::string kid;
  std::shared_ptr<const EcKey> key;
};

class KeyStore {
 public:
  // Loads existing keys (or creates the first one). Errors name the offending file.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(KeyStoreOptions options);

  // The key to sign with now; rotates first if the current key is older than the rotation period.
  absl::StatusOr<SigningKey> Current();
  // Any published key (current or retired-but-not-expired); null if unknown.
  std::shared_ptr<const EcKey> Find(const std::string& kid) const;
  // Rotates now regardless of schedule (also used by the schedule). Returns the new kid.
  absl::StatusOr<std::string> Rotate();
  // {"keys":[...]} with every published key, newest first.
  std::string JwksJson() const;
  // Bumped on every change of the published set (rotation, retirement); lets streams notice.
  uint64_t generation() const;

 private:
  struct Entry {
    std::string kid;
    std::shared_ptr<const EcKey> key;
    absl::Time created;
    absl::Time retire_at = absl::InfiniteFuture();  // set when a newer key replaces it
  };
  explicit KeyStore(KeyStoreOptions o) : options_(std::move(o)) {}
  absl::Status Load();
  absl::StatusOr<std::string> RotateLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteMetaLocked(const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteJwksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string JwksJsonLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  std::string KeysDir() const { return options_.state_dir + "/keys"; }

  const KeyStoreOptions options_;
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);  // newest last
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

// Writes `data` to `path` atomically (temp file + rename) with `mode`.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data, int mode);
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace writ::creds
