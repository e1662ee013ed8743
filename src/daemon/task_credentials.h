// Per-task provider credentials for writd: the intent's `credentials:` issued at task start through
// CredentialService::OnTaskStart and delivered to the task only, as one file per provider under
// <run_dir>/credentials/<task-id>/ (directory 0500, files 0400, both owned by the task's uid), and
// taken away (files removed, revocation queued through the outbox) when the task is revoked or
// ends.
//
// The daemon calls Issue from the launcher's task-started request and Revoke from
// every revocation path (violation, task end, deadline, `writ revoke`).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "creds/creds.h"
#include "writ/v1/policy.pb.h"

namespace writ::daemon {

class TaskCredentials {
 public:
  // `svc` outlives this object. `emit` reports operations the service itself does not
  // (issue_failed).
  TaskCredentials(creds::CredentialService* svc, std::string run_dir,
                  std::function<void(const creds::CredentialEvent&)> emit);

  // <run_dir>/credentials/<task-id>: what the launcher exports as WRIT_CREDENTIALS_DIR.
  std::string DirFor(const std::string& task_id) const;

  // Issues `requests` in order and writes each credential to DirFor(task)/<provider>, owned by
  // uid:gid. A request with `required` (the default) that fails: whatever this task was issued is
  // revoked, its directory removed, and the error, naming the provider, returned: the task must not
  // start. One without: an `issue_failed` warning event, and the task starts without it.
  absl::Status Issue(const creds::TaskClaims& claims, uid_t uid, gid_t gid,
                     const std::vector<v1::CredentialRequest>& requests);

  // Revokes every credential of the task (JWT-SVIDs at once, external ones through the outbox) and
  // removes its credential files. Idempotent. An error (logged here too) means part of it failed,
  // e.g. the durable revocation record; provider revocations are queued regardless.
  absl::Status Revoke(const std::string& task_id, const std::string& reason);

  // The file format (one `key=value` per line, values without newlines, shell-sourceable):
  //   provider=pg  type=postgres_role  id=<role>  secret=<password>  expires=<RFC 3339 or empty>
  static std::string Format(const creds::IssuedCredential& c);

 private:
  absl::Status WriteCredential(const std::string& task_id, uid_t uid, gid_t gid,
                               const creds::IssuedCredential& c);
  void RemoveDir(const std::string& task_id);

  creds::CredentialService* svc_;
  std::string root_;  // <run_dir>/credentials
  std::function<void(const creds::CredentialEvent&)> emit_;
};

}  // namespace writ::daemon
