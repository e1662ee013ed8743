// Durable revocation state: tokens issued (jti -> task, exp), revoked jtis and revoked/ended tasks,
// in SQLite (WAL) at <state_dir>/revoked.db so a revocation survives a daemon restart. An in-memory
// copy answers the hot path (introspection) without touching disk. Entries whose tokens have all
// expired are pruned: an expired token is inactive anyway.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "creds/sqlite.h"

namespace writ::creds {

class RevocationStore {
 public:
  static absl::StatusOr<std::unique_ptr<RevocationStore>> Open(const std::string& path);

  absl::Status RecordIssued(const std::string& jti, const std::string& task_id, absl::Time exp);
  // Revokes the task and every unexpired token issued for it; returns those jtis (for events).
  absl::StatusOr<std::vector<std::string>> RevokeTask(const std::string& task_id,
                                                      const std::string& reason, absl::Time now);
  // Revokes one token. Idempotent. `exp` bounds how long the entry is kept.
  absl::Status RevokeJti(const std::string& jti, const std::string& task_id, absl::Time exp,
                         const std::string& reason);
  // Memory only: the task's tokens are inactive from now on (RevokeTask does this first, then
  // persists). For the violation path, which must not wait for a disk write before introspection
  // says inactive.
  void MarkTaskRevoked(const std::string& task_id);
  bool IsJtiRevoked(const std::string& jti) const;
  bool IsTaskRevoked(const std::string& task_id) const;
  // Drops entries for tokens that expired before `now` (task rows are kept: a task id is never
  // reused).
  absl::Status Prune(absl::Time now);

 private:
  explicit RevocationStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  absl::Status Init();

  // mu_ (the database, held across fsyncs) is taken before mem_mu_; lookups take only mem_mu_, so
  // introspection never waits for the disk.
  mutable absl::Mutex mu_;
  std::unique_ptr<SqliteDb> db_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex mem_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_set<std::string> revoked_jtis_ ABSL_GUARDED_BY(mem_mu_);
  absl::flat_hash_set<std::string> revoked_tasks_ ABSL_GUARDED_BY(mem_mu_);
};

}  // namespace writ::creds
