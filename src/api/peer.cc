#include "api/peer.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; Debian 12's headers predate it
#endif

namespace writ::api {

namespace {

std::atomic<uint64_t> g_next_conn{1};

absl::Status Gone(pid_t pid, absl::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("the peer (pid ", pid, ") ", why,
                   ": writd cannot tell who it is, so it refuses the connection"));
}

// "Pid:" of a pidfd's fdinfo: the process's pid in writd's namespace, or -1 once it has exited.
absl::StatusOr<pid_t> PidOfPidfd(int pidfd) {
  ASSIGN_OR_RETURN(std::string info, ReadFile(absl::StrCat("/proc/self/fdinfo/", pidfd)));
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    if (absl::ConsumePrefix(&line, "Pid:")) {
      int pid = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid)) return static_cast<pid_t>(pid);
    }
  }
  return absl::InternalError("pidfd fdinfo has no Pid line");
}

// The state letter of /proc/<pid>/stat ('R', 'S', 'Z', ...), or 0 when it cannot be read.
char ProcState(pid_t pid) {
  auto stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return 0;
  size_t rp = stat->rfind(')');
  return rp != std::string::npos && rp + 2 < stat->size() ? (*stat)[rp + 2] : 0;
}

absl::StatusOr<std::string> ReadCgroup(pid_t pid) {
  ASSIGN_OR_RETURN(std::string s, ReadFile(absl::StrCat("/proc/", pid, "/cgroup")));
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return absl::NotFoundError(absl::StrCat("pid ", pid, " has no cgroup v2 entry"));
}

}  // namespace

bool Peer::InGroup(gid_t g) const {
  return cred.gid == g || std::find(groups.begin(), groups.end(), g) != groups.end();
}

absl::StatusOr<std::string> CgroupOfPidfd(int pidfd, pid_t expect_pid) {
  ASSIGN_OR_RETURN(pid_t pid, PidOfPidfd(pidfd));
  if (pid <= 0) return Gone(expect_pid, "exited");
  if (pid != expect_pid) return Gone(expect_pid, absl::StrCat("is now pid ", pid));
  // Read the cgroup, then prove the reading was of the pinned, living process: a process that is
  // neither a zombie nor gone after the read was the one read (its pid cannot be reused while the
  // pidfd's process holds it).
  auto cg = ReadCgroup(pid);
  if (!cg.ok()) return Gone(pid, "exited");
  const char state = ProcState(pid);
  if (state == 0 || state == 'Z' || state == 'X') return Gone(pid, "exited");
  if (syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0) return Gone(pid, "exited");
  return cg;
}

absl::StatusOr<Peer> IdentifyPeer(int fd) {
  Peer p;
  RETURN_IF_ERROR(GetPeerCred(fd, &p.cred));
  if (p.cred.pid <= 0) return Gone(p.cred.pid, "has no pid in writd's namespace");
  gid_t groups[256];
  socklen_t glen = sizeof(groups);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
    p.groups.assign(groups, groups + glen / sizeof(gid_t));
  } else {
    return ErrnoStatus(errno, "SO_PEERGROUPS");  // more than 256 groups: refused, not guessed
  }
  int raw = -1;
  socklen_t len = sizeof(raw);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &raw, &len) == 0) {
    p.pidfd_from_socket = true;
  } else if (errno == ENOPROTOOPT) {
    raw = static_cast<int>(syscall(SYS_pidfd_open, p.cred.pid, 0));  // best effort on older kernels
  }
  Fd pidfd(raw);
  if (!pidfd.valid()) return Gone(p.cred.pid, "exited");
  ASSIGN_OR_RETURN(p.cgroup, CgroupOfPidfd(pidfd.get(), p.cred.pid));
  p.conn_id = g_next_conn.fetch_add(1);
  return p;
}

}  // namespace writ::api
