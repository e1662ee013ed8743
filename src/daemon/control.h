// ControlService: every request on writd's control socket (include/writ/v1/api.proto), answered on
// the connection's own thread: create a task, the launcher's task-started report, status, tail,
// kill / freeze / thaw / revoke, approvals and decisions, policy reload. Authorization is decided
// here, from the peer the connection was accepted with (api::PeerCred), before anything changes; a
// refused request changes nothing.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "api/framing.h"
#include "daemon/approvals.h"
#include "daemon/policies.h"
#include "daemon/seams.h"
#include "identity/task.h"
#include "writ/v1/api.pb.h"

namespace writ::daemon {

class ControlService {
 public:
  struct Deps {
    identity::TaskRegistry& registry;
    PolicyStore& policies;
    Approvals& approvals;
    TaskControl& tasks;
    EventOutput& output;
  };
  // What the control service asks of the rest of writd.
  struct Hooks {
    std::function<void(v1::StatusResponse*)> status;
    std::function<void(int fd, const v1::TailRequest&)> tail;
    // What the launcher's seccomp filter must refuse to signal or trace (self-protection).
    std::function<void(v1::PlacedResponse*)> protect;
    // Where the task's provider credentials are delivered ("" when it has none).
    std::function<std::string(const identity::Task&)> credentials_dir;
    // The cgroup v2 path of a process (identity::ProcessCgroup when unset; unit tests fake it).
    std::function<absl::StatusOr<std::string>(pid_t)> cgroup_of;
  };
  struct Options {
    std::string cgroup_subtree = "writ";  // task cgroups are /<subtree>/<task-id>
    identity::TaskMode mode = identity::TaskMode::kMonitor;  // the daemon's
  };
  ControlService(Deps deps, Hooks hooks, Options opts);

  // One request; writes its answer (several frames for tail) on fd.
  void Handle(const api::PeerCred& peer, int fd, const v1::Request& req);

  // The handlers (public for the unit tests).
  v1::Response CreateTask(const api::PeerCred& peer, const v1::CreateTaskRequest& req);
  v1::Response TaskStarted(const api::PeerCred& peer, const v1::TaskStartedRequest& req);
  v1::Response TaskAction(const api::PeerCred& peer, const v1::Request& req);
  v1::Response ListApprovals(const api::PeerCred& peer);
  v1::Response Decide(const api::PeerCred& peer, const v1::ApprovalDecision& d);
  v1::Response Reload(const api::PeerCred& peer);

 private:
  // The task whose cgroup holds the peer ("" when none); an unreadable cgroup counts as inside one.
  bool PeerIsInTask(const api::PeerCred& peer, std::string* task_id = nullptr) const;

  Deps d_;
  Hooks hooks_;
  Options opts_;
};

}  // namespace writ::daemon
