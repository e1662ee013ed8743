// Who is at the other end of a control connection, decided once when the connection was accepted,
// from what the kernel vouches for: SO_PEERCRED (uid, gid and pid at connect), SO_PEERGROUPS, and
// the peer process's cgroup read through its pidfd (SO_PEERPIDFD). The pidfd pins the process: a
// peer that exited, or whose pid now names another process, is refused — never attributed to
// whoever holds the number now. Every control request is authorized on this record
// (daemon/control.h), never on a pid looked up later.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/framing.h"

namespace writ::api {

struct Peer {
  PeerCred cred;              // at connect
  std::vector<gid_t> groups;  // supplementary groups at connect (SO_PEERGROUPS)
  std::string cgroup;         // the peer process's cgroup v2 path, read at accept
  uint64_t conn_id = 0;       // unique per connection for this writd's lifetime
  // False where the kernel has no SO_PEERPIDFD (before 6.5): the pid was pinned with pidfd_open at
  // accept instead, which a peer that exits between connect and accept can race
  // (docs/threat-model.md).
  bool pidfd_from_socket = false;

  bool InGroup(gid_t g) const;
};

// Identifies the peer of a connected unix socket. FailedPrecondition when it exited (or became a
// zombie) before it could be identified, or its pid no longer names it.
absl::StatusOr<Peer> IdentifyPeer(int fd);

// The same identification for a process given by pidfd (tests; adopted processes).
absl::StatusOr<std::string> CgroupOfPidfd(int pidfd, pid_t expect_pid);

}  // namespace writ::api
