// Who `writ run` runs an agent as, and how its process gives up what it must not keep
// (docs/threat-model.md, "The two attacker models").
//
// Agents run unprivileged by default: as the invoking user (the real user behind sudo, or the
// caller itself when it reaches writd's socket through the control group), or `--user NAME`; never
// as root unless asked for on the command line (`--allow-root`) and allowed by the intent
// (`run_as_root`).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace writ::cli {

struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
  std::string home;
  std::vector<gid_t> groups;  // its supplementary groups, looked up before the fork
  bool root = false;
  // Whether this launcher may change identity at all (it runs as root); an unprivileged launcher's
  // child keeps the launcher's own identity.
  bool switch_identity = false;
};

// From --user NAME|UID, --allow-root, the caller's ids and SUDO_UID. An error names what to pass.
absl::StatusOr<RunAs> ChooseRunAs(const std::string& user_flag, bool allow_root);

// In the launcher's child, after writd placed it in the task cgroup and before it execs the agent
// (so it opens no file: every open there is the task's, judged by its intent; NSS lookups happen in
// ChooseRunAs, before the fork):
// its own session and process group; with switch_identity the target user's groups, gid and uid and
// an empty capability bounding set; then no ambient capabilities and no_new_privs (a setuid binary
// cannot bring root back). HOME, USER and LOGNAME follow the user. The task keeps the groups that
// reach writd's control socket: it may start sub-agents of itself, and writd authorizes every
// request on the caller's cgroup, not on its groups (daemon/control.h).
absl::Status DropPrivileges(const RunAs& who);

}  // namespace writ::cli
