#include "cli/run_as.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace writ::cli {

namespace {

absl::StatusOr<RunAs> FromPasswd(struct passwd* pw, const std::string& what) {
  if (!pw) return absl::NotFoundError(absl::StrCat(what, ": no such user"));
  RunAs r;
  r.uid = pw->pw_uid;
  r.gid = pw->pw_gid;
  r.user = pw->pw_name;
  r.home = pw->pw_dir ? pw->pw_dir : "/";
  return r;
}

absl::StatusOr<RunAs> Lookup(const std::string& name) {
  uint32_t uid = 0;
  if (absl::SimpleAtoi(name, &uid)) return FromPasswd(getpwuid(uid), absl::StrCat("--user ", name));
  return FromPasswd(getpwnam(name.c_str()), absl::StrCat("--user ", name));
}

}  // namespace

absl::StatusOr<RunAs> ChooseRunAs(const std::string& user_flag, bool allow_root) {
  const bool privileged = geteuid() == 0;
  if (allow_root) {
    if (!user_flag.empty()) {
      return absl::InvalidArgumentError("--allow-root and --user exclude each other");
    }
    if (!privileged) {
      return absl::PermissionDeniedError(
          "--allow-root: only root can start a task that runs as root");
    }
    ASSIGN_OR_RETURN(RunAs r, FromPasswd(getpwuid(0), "root"));
    r.root = true;
    r.switch_identity = true;  // the identity stays; only the session and no_new_privs change
    return r;
  }
  RunAs r;
  if (!user_flag.empty()) {
    ASSIGN_OR_RETURN(r, Lookup(user_flag));
    if (r.uid == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--user ", user_flag,
                       " is root: a root task needs --allow-root (and an intent with "
                       "run_as_root: true)"));
    }
    if (!privileged && r.uid != getuid()) {
      return absl::PermissionDeniedError(
          absl::StrCat("--user ", user_flag, ": only root may run a task as another user"));
    }
  } else if (privileged) {
    // Behind sudo the invoking user is the one who asked; root itself must say whom the agent runs
    // as.
    const char* sudo_uid = getenv("SUDO_UID");
    uint32_t uid = 0;
    if (!sudo_uid || !absl::SimpleAtoi(sudo_uid, &uid) || uid == 0) {
      return absl::InvalidArgumentError(
          "writ run as root runs the agent as an unprivileged user: pass --user NAME (or "
          "--allow-root, which the intent must also allow with run_as_root: true)");
    }
    ASSIGN_OR_RETURN(r, FromPasswd(getpwuid(uid), absl::StrCat("SUDO_UID ", uid)));
  } else {
    ASSIGN_OR_RETURN(r, FromPasswd(getpwuid(getuid()), absl::StrCat("uid ", getuid())));
  }
  r.switch_identity = privileged;
  if (privileged) {
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(r.user.c_str(), r.gid, groups, &n) < 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("user ", r.user, " is in more than 256 groups"));
    }
    r.groups.assign(groups, groups + n);
  }
  return r;
}

absl::Status DropPrivileges(const RunAs& who) {
  // Its own session: no controlling terminal to inject input into (TIOCSTI), and a process group of
  // its own, so kill(0, ...) reaches nobody but the task.
  if (setsid() < 0) return ErrnoStatus(errno, "setsid");
  if (who.switch_identity && !who.root) {
    // Bounding set first: dropping it needs CAP_SETPCAP, which setuid below takes away.
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
        return ErrnoStatus(errno, absl::StrCat("drop capability ", cap, " from the bounding set"));
      }
    }
    if (setgroups(who.groups.size(), who.groups.data()) != 0)
      return ErrnoStatus(errno, "setgroups");
    if (setresgid(who.gid, who.gid, who.gid) != 0) return ErrnoStatus(errno, "setresgid");
    if (setresuid(who.uid, who.uid, who.uid) != 0) return ErrnoStatus(errno, "setresuid");
    uid_t ru, eu, su;
    if (getresuid(&ru, &eu, &su) != 0 || ru != who.uid || eu != who.uid || su != who.uid) {
      return absl::InternalError("setresuid did not take");
    }
    setenv("HOME", who.home.c_str(), 1);
    setenv("USER", who.user.c_str(), 1);
    setenv("LOGNAME", who.user.c_str(), 1);
  }
  (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoStatus(errno, "no_new_privs");
  return absl::OkStatus();
}

}  // namespace writ::cli
