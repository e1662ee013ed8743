// TaskLifecycle: a task from install to end, and everything writd does to one (TaskControl,
// seams.h).
//
//   Install    slot, cgroup, kernel tables and task_map entry (bpf/task_tables.h), registry, state
//   store responses  kill (cgroup.kill), freeze/thaw (cgroup.freeze), revoke (credentials), each an
//   `action` cascade    a sub-agent cannot outlive its parent's authority: ended, revoked or killed
//   with it Housekeep  approval expiry, the pending-launcher timeout, deadlines, empty cgroups ->
//   task_end Restore    the tasks a previous writd left (task_restore.cc)
//
// Threads: Housekeeping, EndTask and Restore run on the pipeline thread (the task table has one
// writer for removal, and a task's last records are drained before its task_end); the actions run
// there and on control threads, touching the registry (its own lock), cgroup files and the task's
// atomics only.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/framing.h"
#include "bpf/loader.h"
#include "daemon/approvals.h"
#include "daemon/seams.h"
#include "identity/cgroup.h"
#include "identity/task.h"
#include "state/store.h"

namespace writ::daemon {

class ToolCalls;  // tool_calls.h
class DnsEgress;  // dns_egress.h

// Credential hooks (Daemon::TaskCredentialHooks, daemon_credentials.cc); each is optional.
struct CredentialHooks {
  // The launcher's child is placed and waits: an error refuses the start (the command never runs).
  std::function<absl::Status(const identity::Task&, const api::PeerCred& launcher)> on_task_start;
  std::function<absl::Status(const identity::Task&, const std::string& reason)> revoke;
  // In-memory revocation, effective at once (the durable one follows through `revoke`).
  std::function<void(const std::string& task_id)> mark_revoked;
};

class TaskLifecycle final : public TaskControl {
 public:
  struct Deps {
    identity::CgroupManager& cgroups;
    bpf::Loader& loader;
    identity::TaskRegistry& registry;
    identity::ProcessTable& procs;  // the pipeline thread's: used from EndTask and Restore only
    Approvals& approvals;
    EventOutput& output;
    state::Store* store;  // null: nothing persisted
  };
  TaskLifecycle(Deps deps, CredentialHooks creds);
  // Held MCP tool calls whose approval expires are answered through it.
  void set_tool_calls(ToolCalls* t) { tool_calls_ = t; }
  // DNS egress: a task's names are answered from the moment it is armed until it ends.
  void set_dns(DnsEgress* d) { dns_ = d; }

  // ---- TaskActions ----
  absl::Status Signal(uint32_t pid, uint64_t start_ns, int sig) override;
  absl::Status KillNow(identity::Task& task) override;
  bool Freeze(identity::Task& task, bool frozen, const v1::Event* cause,
              const std::string& reason) override;
  void MarkRevoked(const identity::Task& task) override;
  void RunResponses(identity::Task& task, const v1::Event& cause,
                    const std::vector<std::string>& responses, const std::string& reason) override;
  // ---- TaskControl ----
  absl::Status Install(const std::shared_ptr<identity::Task>& task, const v1::Intent* spec,
                       pid_t place) override;
  absl::Status Place(const identity::Task& task, pid_t pid) override;
  absl::Status OnStarted(const identity::Task& task, const api::PeerCred& launcher) override;
  bool Kill(identity::Task& task, const v1::Event* cause, const std::string& reason) override;
  void Revoke(identity::Task& task, uint64_t cause_ktime_ns, const std::string& reason) override;
  absl::Status GrantConnect(const identity::Task& task, const v1::Network& dst) override;

  // ---- pipeline thread ----
  void Housekeeping();
  // Takes back the tasks a previous writd left (at start, before the pipeline runs).
  void Restore();

  uint64_t actions() const { return actions_.load(); }

 private:
  // Revokes without ending sub-agents (the cascades call this for each descendant).
  void RevokeOnly(identity::Task& task, uint64_t cause_ktime_ns, const std::string& reason);
  // Sub-agents of `task` end with it: killed now, credentials revoked now, task_end `end_reason`.
  void EndChildren(identity::Task& task, const char* end_reason, const std::string& why);
  void EndTask(const std::shared_ptr<identity::Task>& task, const std::string& reason);
  void Save(const identity::Task& task, const v1::Intent* spec);
  // A task of a previous writd that cannot be taken back: its task_end, credentials, cgroup,
  // record.
  void Abandon(identity::Task& task, bool alive);

  Deps d_;
  ToolCalls* tool_calls_ = nullptr;
  DnsEgress* dns_ = nullptr;
  CredentialHooks creds_;
  std::atomic<uint64_t> actions_{0};
  // Pipeline thread: tasks past their deadline, killed, waiting for their cgroup to empty.
  std::vector<std::shared_ptr<identity::Task>> ending_;
};

}  // namespace writ::daemon
