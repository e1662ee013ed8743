// Daemon <-> per-task provider credentials (task_credentials.h): the hooks every revocation path
// calls, and the check that every intent names only configured providers.

#include "absl/strings/str_cat.h"
#include "daemon/daemon.h"
#include "util/util.h"

namespace writ::daemon {

CredentialHooks Daemon::TaskCredentialHooks() {
  CredentialHooks h;
  h.on_task_start = [this](const identity::Task& t, const api::PeerCred& launcher) -> absl::Status {
    if (!t.compiled || t.compiled->credentials().empty()) return absl::OkStatus();
    // The files belong to the user the task's processes run as.
    gid_t gid = launcher.gid;
    if (static_cast<uint32_t>(launcher.uid) != t.run_uid) {
      std::optional<UserEntry> u = LookupUser(t.run_uid);
      gid = u ? u->gid : t.run_uid;
    }
    return task_creds_->Issue(Claims(t), t.run_uid, gid, t.compiled->credentials());
  };
  h.revoke = [this](const identity::Task& t, const std::string& reason) {
    return task_creds_->Revoke(t.id, reason);
  };
  h.mark_revoked = [this](const std::string& task_id) { cred_service_->MarkRevoked(task_id); };
  return h;
}

absl::Status Daemon::CheckIntentCredentials(const intent::PolicySet& set) const {
  absl::flat_hash_map<std::string, std::string> providers;
  for (const auto& p : cfg_.credential_providers) providers[p.name] = p.type;
  return intent::CheckCredentialProviders(set, providers,
                                          [](const std::string&, const std::string& grant) {
                                            return creds::ValidateGrant("intent", grant);
                                          });
}

}  // namespace writ::daemon
