// ControlService: every request on writd's control socket (include/writ/v1/api.proto), answered on
// the connection's own thread: create a task, the launcher's task-started report, status, tail,
// kill / freeze / thaw / revoke, approvals and decisions, policy reload.
//
// Authorization is decided here, on the identity the connection was accepted with (api::Peer: uid
// and groups at connect, the cgroup read through the peer's pidfd), before anything changes; a
// refused request changes nothing. The rules (docs/threat-model.md, Control plane):
//   - a process inside a task may create only sub-agents of its own task, and sees only its own
//   task
//     (status, tail, approvals); anything else it asks for is refused and reported as a `self`
//     finding (OWASP-ASI10, ASI03) that runs its task's responses;
//   - only the connection that created a task may start it (place the launcher's child) and report
//     its MCP tool calls (writ run --mcp), and only from outside every task;
//   - kill, freeze, thaw, revoke, approve, deny and reload are for admins: root or the admin group,
//     never a process inside any task, whatever its uid;
//   - other callers (the control group's members) launch tasks and see the tasks they launched.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/peer.h"
#include "daemon/approvals.h"
#include "daemon/policies.h"
#include "daemon/seams.h"
#include "daemon/tool_calls.h"
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
    ToolCalls* tool_calls = nullptr;  // MCP gateway reports (nullptr: refused as unimplemented)
  };
  // What the control service asks of the rest of writd.
  struct Hooks {
    std::function<void(v1::StatusResponse*)> status;
    // Streams events to a tail client; `visible` says which events this caller may see.
    std::function<void(int fd, const v1::TailRequest&,
                       std::function<bool(const v1::Event&)> visible)>
        tail;
    // What the launcher's seccomp filter must refuse to signal or trace (self-protection).
    std::function<void(v1::PlacedResponse*)> protect;
    // Where the task's provider credentials are delivered ("" when it has none).
    std::function<std::string(const identity::Task&)> credentials_dir;
    // A one-time login link to the approvals console for `who` (null: no console).
    std::function<absl::StatusOr<v1::ConsoleLoginResponse>(const std::string& who)> console_login;
    // Verifies a signed policy bundle and puts it in force (null: refused as unimplemented).
    std::function<absl::StatusOr<v1::PolicyBundleState>(const std::string& envelope,
                                                        const std::string& who)>
        apply_bundle;
  };
  struct Options {
    std::string cgroup_subtree = "writ";  // task cgroups are /<subtree>/<task-id>
    identity::TaskMode mode = identity::TaskMode::kMonitor;  // the daemon's
    int admin_gid = -1;           // members may kill, approve, reload (-1: root only)
    std::string workload_socket;  // unix:///... exported to tasks as SPIFFE_ENDPOINT_SOCKET
  };
  ControlService(Deps deps, Hooks hooks, Options opts);

  // One request; writes its answer (several frames for tail) on fd.
  void Handle(const api::Peer& peer, int fd, const v1::Request& req);

  // The handlers (public for the unit tests).
  v1::Response CreateTask(const api::Peer& peer, const v1::CreateTaskRequest& req);
  v1::Response TaskStarted(const api::Peer& peer, const v1::TaskStartedRequest& req);
  v1::Response Status(const api::Peer& peer);
  v1::Response TaskAction(const api::Peer& peer, const v1::Request& req);
  v1::Response ListApprovals(const api::Peer& peer);
  v1::Response Decide(const api::Peer& peer, const v1::ApprovalDecision& d);
  v1::Response Reload(const api::Peer& peer);
  v1::Response ApplyBundle(const api::Peer& peer, const v1::PolicyBundleRequest& req);
  v1::Response ConsoleLogin(const api::Peer& peer);

  // For the approvals console, whose caller was authorized there (an admin's login session): the
  // decision and task actions the control socket's admins make, recorded as `who` from `via`.
  v1::Response DecideAs(const std::string& who, const std::string& via,
                        const v1::ApprovalDecision& d);
  v1::Response TaskActionAs(const std::string& who, const std::string& action,
                            const v1::TaskRequest& tr);
  // A caller inside task `task_id` reached writd through `channel` ("console"): refused and
  // counted, a `self` finding (writ/self.<channel>.<request>) and the task's responses.
  void RefuseTaskCaller(const std::string& task_id, const char* channel, const char* request,
                        const absl::Status& why);
  v1::Response ToolCall(const api::Peer& peer, const v1::ToolCallReport& r);

  // Requests refused on authorization (any caller), and of them those from inside a task.
  uint64_t refused() const { return refused_.load(); }
  uint64_t refused_from_tasks() const { return refused_from_tasks_.load(); }

 private:
  // Who is asking, as far as authorization goes.
  struct Caller {
    bool in_task = false;                  // the peer's cgroup is under /<subtree>/
    std::string task_id;                   // that task's id (even when it has ended since)
    std::shared_ptr<identity::Task> task;  // that task, while it is registered
    bool admin = false;                    // not in a task, and root or in the admin group
  };
  Caller Classify(const api::Peer& peer) const;
  // May this caller see (status, tail, approvals) task `t`?
  bool Sees(const api::Peer& peer, const Caller& c, const identity::Task& t) const;
  // A refusal: counted; from inside a task also a `self` finding and the task's responses.
  v1::Response Refuse(const api::Peer& peer, const Caller& c, const char* request,
                      const absl::Status& why);
  void SelfFinding(identity::Task& t, const v1::Process* p, const char* channel,
                   const char* channel_name, const char* request, const absl::Status& why);
  // Admin-only requests: nullopt when allowed, else the refusal.
  std::optional<v1::Response> RequireAdmin(const api::Peer& peer, const Caller& c,
                                           const char* request);

  Deps d_;
  Hooks hooks_;
  Options opts_;
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> refused_from_tasks_{0};
};

}  // namespace writ::daemon
