#include "daemon/task_lifecycle.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "actions/signal.h"
#include "bpf/task_tables.h"
#include "daemon/dns_egress.h"
#include "daemon/events.h"
#include "daemon/tool_calls.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskState;

namespace {

constexpr absl::Duration kPendingTimeout = absl::Seconds(10);

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd");
  return l;
}

bool Has(const std::vector<std::string>& v, const char* s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Sub-agent tasks delegated by task `id` (direct children; callers recurse through them).
std::vector<std::shared_ptr<Task>> ChildrenOf(const identity::TaskRegistry& reg,
                                              const std::string& id) {
  std::vector<std::shared_ptr<Task>> out;
  for (const std::shared_ptr<Task>& t : reg.All()) {
    if (t->parent_task == id && t->state.load() != TaskState::kEnded) out.push_back(t);
  }
  return out;
}

}  // namespace

TaskLifecycle::TaskLifecycle(Deps deps, CredentialHooks creds)
    : d_(deps), creds_(std::move(creds)) {}

absl::Status TaskLifecycle::Signal(uint32_t pid, uint64_t start_ns, int sig) {
  return actions::SignalProcess(pid, start_ns, sig);
}

absl::Status TaskLifecycle::KillNow(Task& task) {
  // The reason is named before the kill: a control thread kills (a denial, before the thaw) while
  // the pipeline thread ends tasks whose cgroup emptied, and the task must not end there as
  // "exited" before RunResponses' Kill names it (console_e2e `deny` under ASan). A reason set
  // first (a parent's cascade, the deadline) wins, as in Kill.
  static constexpr const char* kKilled = "killed";
  const char* none = nullptr;
  const bool named = task.end_reason.compare_exchange_strong(none, kKilled);
  absl::Status st = d_.cgroups.Kill(task.id);
  if (!st.ok()) {
    const char* ours = kKilled;
    if (named) task.end_reason.compare_exchange_strong(ours, nullptr);  // it was not killed
    Log()->error("task {}: kill: {}", task.id, std::string(st.message()));
  }
  return st;
}

void TaskLifecycle::MarkRevoked(const Task& task) {
  if (creds_.mark_revoked) creds_.mark_revoked(task.id);
}

absl::Status TaskLifecycle::Install(const std::shared_ptr<Task>& task, const v1::Intent* spec,
                                    pid_t place) {
  // Each step undoes the ones before it when it fails: nothing is left behind.
  ASSIGN_OR_RETURN(task->slot, d_.registry.AllocateSlot());
  auto cgid = d_.cgroups.CreateTask(task->id);
  if (!cgid.ok()) {
    d_.registry.FreeSlot(task->slot);
    return cgid.status();
  }
  task->cgroup_id = *cgid;
  task->cgroup_path = d_.cgroups.TaskDir(task->id);
  // The task map entry exists before any process joins the cgroup.
  absl::Status st = bpf::ArmTask(d_.loader, *task);
  if (st.ok()) st = d_.registry.Add(task);
  if (st.ok() && place > 0) {
    st = Place(*task, place);
    if (!st.ok()) d_.registry.Remove(task->id);
  }
  if (!st.ok()) {
    (void)d_.loader.RemoveTask(task->cgroup_id);
    d_.loader.ClearTables(task->slot);
    (void)d_.cgroups.RemoveTask(task->id);
    d_.registry.FreeSlot(task->slot);
    return st;
  }
  if (dns_) dns_->AddTask(*task);
  Save(*task, spec);
  return absl::OkStatus();
}

absl::Status TaskLifecycle::Place(const Task& task, pid_t pid) {
  absl::Status st = WriteFile(task.cgroup_path + "/cgroup.procs", std::to_string(pid));
  if (!st.ok()) {
    return absl::Status(st.code(),
                        absl::StrCat("place pid ", pid, " in task ", task.id, ": ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status TaskLifecycle::OnStarted(const Task& task, const api::PeerCred& launcher) {
  return creds_.on_task_start ? creds_.on_task_start(task, launcher) : absl::OkStatus();
}

absl::Status TaskLifecycle::GrantConnect(const Task& task, const v1::Network& dst) {
  writ_grant_key g{};
  g.slot = task.slot;
  g.port = static_cast<uint16_t>(dst.dst_port());
  g.family = dst.family() == "inet6" ? AF_INET6 : AF_INET;
  if (inet_pton(g.family, dst.dst_ip().c_str(), g.addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an address: ", dst.dst_ip()));
  }
  return d_.loader.GrantConnect(g);
}

void TaskLifecycle::RunResponses(Task& task, const v1::Event& cause,
                                 const std::vector<std::string>& responses,
                                 const std::string& reason) {
  if (Has(responses, "kill")) {
    Kill(task, &cause, reason);
  } else if (Has(responses, "freeze")) {
    Freeze(task, true, &cause, reason);
  }
  if (Has(responses, "revoke") && creds_.revoke) Revoke(task, cause.ktime_ns(), reason);
}

void TaskLifecycle::Revoke(Task& task, uint64_t cause_ktime_ns, const std::string& reason) {
  RevokeOnly(task, cause_ktime_ns, reason);
  // A sub-agent holds authority delegated by this task: it cannot outlive the parent's.
  EndChildren(task, "parent_revoked", "parent task " + task.id + " revoked: " + reason);
}

// Revokes the task's credentials and says so in an `action` event whose result is what happened: a
// revocation that failed in part (e.g. its durable record could not be written) is not reported
// "ok".
void TaskLifecycle::RevokeOnly(Task& task, uint64_t cause_ktime_ns, const std::string& reason) {
  if (!creds_.revoke) return;
  absl::Status st = creds_.revoke(task, reason);
  v1::Event a = ActionEvent(d_.output, task, "revoke", st.ok() ? "ok" : std::string(st.message()),
                            cause_ktime_ns, task.id, reason);
  d_.output.Emit(a);
}

// A sub-agent acts on authority delegated by its parent: when the parent ends or is revoked, the
// child is revoked at once (with an `action` event), killed, and ends with a task_end naming why.
// Grandchildren follow recursively. A parent is often killed, revoked and ended in turn, and each
// cascade reaches the same descendants: each one is revoked and killed once (one `action` event
// each), by the first cascade.
void TaskLifecycle::EndChildren(Task& task, const char* end_reason, const std::string& why) {
  for (const auto& c : ChildrenOf(d_.registry, task.id)) {
    const char* none = nullptr;
    c->end_reason.compare_exchange_strong(none, end_reason);
    if (!c->revoked_by_parent.exchange(true)) RevokeOnly(*c, 0, why);
    EndChildren(*c, end_reason, "parent task " + c->id + " ended: " + why);
    if (!c->killed_by_parent.exchange(true)) Kill(*c, nullptr, why);
  }
}

bool TaskLifecycle::Kill(Task& task, const v1::Event* cause, const std::string& reason) {
  absl::Status st = d_.cgroups.Kill(task.id);
  // The task ends when its cgroup empties; it did not exit by itself. A cause set first (a parent's
  // cascade, the deadline) wins.
  const char* none = nullptr;
  if (st.ok()) task.end_reason.compare_exchange_strong(none, "killed");
  // Freezing is undone by the kill: a frozen task's processes die too (cgroup.kill works on frozen
  // cgroups).
  v1::Event a = ActionEvent(d_.output, task, "kill", st.ok() ? "ok" : std::string(st.message()),
                            cause ? cause->ktime_ns() : 0, task.id, reason);
  d_.output.Emit(a);
  actions_++;
  // Killing a parent kills its sub-agents (recursively); each ends when its cgroup empties.
  for (const auto& c : ChildrenOf(d_.registry, task.id)) {
    none = nullptr;
    c->end_reason.compare_exchange_strong(none, "parent_killed");
    if (!c->killed_by_parent.exchange(true)) {
      Kill(*c, cause, "parent task " + task.id + " killed: " + reason);
    }
  }
  return st.ok();
}

bool TaskLifecycle::Freeze(Task& task, bool frozen, const v1::Event* cause,
                           const std::string& reason) {
  absl::Status st = d_.cgroups.Freeze(task.id, frozen);
  if (st.ok()) task.frozen = frozen;
  v1::Event a = ActionEvent(d_.output, task, frozen ? "freeze" : "thaw",
                            st.ok() ? "ok" : std::string(st.message()),
                            cause ? cause->ktime_ns() : 0, task.id, reason);
  d_.output.Emit(a);
  actions_++;
  return st.ok();
}

void TaskLifecycle::Housekeeping() {
  absl::Time now = absl::Now();
  // Approvals that nobody decided in time: as if denied.
  for (ApprovalRequest& r : d_.approvals.TakeExpired(now)) {
    std::shared_ptr<Task> t = d_.registry.Find(r.task_id);
    if (!t) continue;
    v1::Event a =
        ActionEvent(d_.output, *t, "deny", "ok", r.cause.ktime_ns(), r.id, "approval expired");
    a.mutable_approval()->set_id(r.id);
    a.mutable_approval()->set_reason("expired");
    d_.output.Emit(a);
    if (r.kind ==
        "tool_call") {  // a held MCP call: nothing stopped; its gateway answers the client
      if (tool_calls_) tool_calls_->Decided(r, false, "expiry (nobody decided in time)");
      continue;
    }
    if (Has(r.responses, "kill")) (void)KillNow(*t);  // before the thaw, as ControlService::Decide
    (void)Signal(r.pid, r.start_ns, SIGKILL);
    Freeze(*t, false, &r.cause, "approval expired");
    RunResponses(*t, r.cause, r.responses, "approval expired: " + r.action);
  }

  std::vector<std::shared_ptr<Task>> empty;
  for (const std::shared_ptr<Task>& t : d_.registry.All()) {
    TaskState st = t->state.load();
    if (st == TaskState::kPending) {
      if (now - t->start > kPendingTimeout) {
        Log()->warn("task {}: launcher never reported its child; removing", t->id);
        EndTask(t, "aborted");
      }
      continue;
    }
    if (st != TaskState::kRunning) continue;
    if (now >= t->deadline) {
      Kill(*t, nullptr, "deadline");
      t->violated = false;
      // The task ends below when its cgroup empties; name the reason now.
      t->state = TaskState::kEnded;
      ending_.push_back(t);
      continue;
    }
    auto populated = d_.cgroups.Populated(t->id);
    if (populated.ok() && !*populated) empty.push_back(t);
  }
  // Read "empty" before draining: a task's last exit record is in the ring buffer by the time its
  // cgroup reports unpopulated, so draining now puts it before task_end.
  d_.loader.Drain();
  for (const auto& t : empty) {
    const char* why = t->end_reason.load();
    EndTask(t, why ? why : "exited");
  }
  for (auto it = ending_.begin(); it != ending_.end();) {
    auto populated = d_.cgroups.Populated((*it)->id);
    if (!populated.ok() || !*populated) {
      d_.loader.Drain();
      std::shared_ptr<Task> t = *it;
      it = ending_.erase(it);
      EndTask(t, "deadline");
    } else {
      ++it;
    }
  }
}

void TaskLifecycle::EndTask(const std::shared_ptr<Task>& t, const std::string& reason) {
  t->state = TaskState::kEnded;
  if (dns_) dns_->RemoveTask(*t);
  (void)d_.loader.RemoveTask(t->cgroup_id);
  d_.loader.ClearTables(t->slot);
  for (ApprovalRequest& r : d_.approvals.TakeTask(t->id)) {
    if (r.pid != 0) (void)Signal(r.pid, r.start_ns, SIGKILL);  // 0: a held MCP tool call
  }
  d_.approvals.ForgetTask(t->id);
  // A failure is logged by the revoke itself; provider revocations are queued regardless.
  if (creds_.revoke) creds_.revoke(*t, "task ended: " + reason).IgnoreError();
  // A parent that ends takes its sub-agents with it: killed now, revoked now, ended when empty.
  EndChildren(*t, "parent_ended", "parent task " + t->id + " ended: " + reason);
  v1::Event e = d_.output.NewEvent("task_end");
  FillAgent(*t, &e);
  e.mutable_task()->set_reason(t->AbortReason().empty() ? reason : "aborted");
  e.mutable_task()->set_cgroup(t->cgroup_path);
  d_.output.Emit(e);
  d_.procs.EraseTask(t->cgroup_id);
  absl::Status st = d_.cgroups.RemoveTask(t->id);
  if (!st.ok()) Log()->warn("task {}: {}", t->id, std::string(st.message()));
  d_.registry.Remove(t->id);
  d_.registry.FreeSlot(t->slot);
  if (d_.store) (void)d_.store->DeleteTask(t->id);
  Log()->info("task {} ended: {}", t->id, reason);
}

}  // namespace writ::daemon
