#include "daemon/control.h"

#include <pwd.h>
#include <signal.h>

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/events.h"
#include "identity/cgroup.h"
#include "identity/spiffe_id.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskState;

namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd");
  return l;
}

v1::Response Error(const absl::Status& st) {
  v1::Response r;
  r.set_code(static_cast<int>(st.code()));
  r.set_error(std::string(st.message()));
  return r;
}

// The parent pid of a process from /proc/<pid>/stat (0 when it cannot be read).
uint32_t ParentOf(uint32_t pid) {
  auto stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  uint32_t ppid = 0;
  if (stat.ok()) {
    size_t rp = stat->rfind(')');
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(*stat).substr(rp == std::string::npos ? 0 : rp + 2), ' ');
    if (f.size() > 1) (void)absl::SimpleAtoi(f[1], &ppid);
  }
  return ppid;
}

}  // namespace

ControlService::ControlService(Deps deps, Hooks hooks, Options opts)
    : d_(deps), hooks_(std::move(hooks)), opts_(std::move(opts)) {
  if (!hooks_.cgroup_of) hooks_.cgroup_of = [](pid_t pid) { return identity::ProcessCgroup(pid); };
}

bool ControlService::PeerIsInTask(const api::PeerCred& peer, std::string* task_id) const {
  auto cg = hooks_.cgroup_of(peer.pid);
  if (!cg.ok()) return true;  // cannot tell: refuse what needs a human
  std::string prefix = "/" + opts_.cgroup_subtree + "/";
  if (!absl::StartsWith(*cg, prefix)) return false;
  if (task_id) {
    std::string rest = cg->substr(prefix.size());
    *task_id = rest.substr(0, rest.find('/'));
  }
  return true;
}

void ControlService::Handle(const api::PeerCred& peer, int fd, const v1::Request& req) {
  v1::Response resp;
  switch (req.body_case()) {
    case v1::Request::kCreateTask:
      resp = CreateTask(peer, req.create_task());
      break;
    case v1::Request::kTaskStarted:
      resp = TaskStarted(peer, req.task_started());
      break;
    case v1::Request::kStatus:
      hooks_.status(resp.mutable_status());
      break;
    case v1::Request::kTail:
      hooks_.tail(fd, req.tail());
      return;
    case v1::Request::kKillTask:
    case v1::Request::kFreezeTask:
    case v1::Request::kThawTask:
    case v1::Request::kRevokeTask:
      resp = TaskAction(peer, req);
      break;
    case v1::Request::kListApprovals:
      resp = ListApprovals(peer);
      break;
    case v1::Request::kDecideApproval:
      resp = Decide(peer, req.decide_approval());
      break;
    case v1::Request::kReloadPolicy:
      resp = Reload(peer);
      break;
    default:
      resp = Error(absl::InvalidArgumentError("unknown or empty request"));
  }
  (void)api::WriteFrame(fd, resp);
}

v1::Response ControlService::CreateTask(const api::PeerCred& peer,
                                        const v1::CreateTaskRequest& req) {
  auto id = identity::ParseSpiffeId(req.spiffe_id());
  if (!id.ok()) return Error(id.status());

  auto task = std::make_shared<Task>();
  task->id = "t-" + RandomHex(6);
  task->spiffe_id = id->ToString();
  task->principal = req.principal();
  task->intent = req.intent();
  task->command.assign(req.command().begin(), req.command().end());
  task->owner_uid = peer.uid;
  task->start = absl::Now();
  task->mode = opts_.mode;
  for (const auto& [k, v] : req.params()) task->params[k] = v;

  std::shared_ptr<Task> parent;
  if (!req.parent_task().empty()) {
    parent = d_.registry.Find(req.parent_task());
    if (!parent) {
      return Error(
          absl::NotFoundError(absl::StrCat("parent task ", req.parent_task(), " does not exist")));
    }
    task->parent_task = parent->id;
    task->chain = parent->chain;
    task->deadline = parent->deadline;
    if (task->principal.empty()) task->principal = parent->principal;
  } else if (!task->principal.empty()) {
    task->chain.push_back(task->principal);
  }
  task->chain.push_back(task->spiffe_id);
  // A process inside a task may only delegate from its own task: otherwise a new top-level task (or
  // another task's child) would be a way out of its intent.
  if (auto cg = hooks_.cgroup_of(peer.pid);
      cg.ok() && absl::StartsWith(*cg, "/" + opts_.cgroup_subtree + "/")) {
    std::string own = cg->substr(opts_.cgroup_subtree.size() + 2);
    own = own.substr(0, own.find('/'));
    if (!parent || parent->id != own) {
      return Error(absl::PermissionDeniedError(
          absl::StrCat("a process inside task ", own,
                       " can only start sub-agents of it (writ run --parent ", own, ")")));
    }
  }

  if (!req.ttl().empty()) {
    auto ttl = ParseDuration(req.ttl());
    if (!ttl.ok()) {
      return Error(absl::InvalidArgumentError(absl::StrCat("--ttl: ", ttl.status().message())));
    }
    task->deadline = std::min(task->deadline, task->start + *ttl);
  }
  std::shared_ptr<const intent::PolicySet> set;
  const v1::Intent* spec = nullptr;
  if (!task->intent.empty()) {
    set = d_.policies.Get();
    spec = set->Find(task->intent);
    if (!spec) {
      std::vector<std::string> names;
      for (const auto& i : set->intents()) names.push_back(i.name());
      return Error(absl::NotFoundError(absl::StrCat(
          "unknown intent \"", task->intent, "\" (loaded: ", absl::StrJoin(names, ", "), ")")));
    }
    absl::flat_hash_map<std::string, std::string> params(task->params.begin(), task->params.end());
    auto compiled = intent::Compile(*spec, params);
    if (!compiled.ok()) return Error(compiled.status());
    task->compiled = *compiled;
    // A sub-agent gets no authority its parent lacks (the parent's compiled intent, as it started).
    if (parent && parent->compiled) {
      absl::Status sub = intent::CheckSubset(*task->compiled, *parent->compiled);
      if (!sub.ok()) return Error(sub);
    }
    if (!task->compiled->mode().empty()) {
      task->mode = *identity::ParseTaskMode(task->compiled->mode());  // the loader checked it
    }
    if (task->compiled->ttl() != absl::InfiniteDuration()) {
      task->deadline = std::min(task->deadline, task->start + task->compiled->ttl());
    }
  } else if (!task->params.empty()) {
    return Error(absl::InvalidArgumentError("--param needs --intent"));
  }
  if (parent && parent->compiled && !task->compiled) {
    return Error(absl::PermissionDeniedError(
        absl::StrCat("a task without an intent (unrestricted) is not allowed by parent intent ",
                     parent->compiled->name())));
  }

  // Nothing is created before every check has passed.
  if (absl::Status st = d_.tasks.Install(task, spec, 0); !st.ok()) return Error(st);
  // task_start precedes every event of the task: the command has not been started yet.
  v1::Event e = TaskStartEvent(d_.output, *task);
  e.mutable_process()->set_pid(peer.pid);
  e.mutable_process()->set_uid(peer.uid);
  d_.output.Emit(e);

  v1::Response resp;
  v1::CreateTaskResponse* r = resp.mutable_create_task();
  r->set_task_id(task->id);
  r->set_cgroup_path(task->cgroup_path);
  if (std::string dir = hooks_.credentials_dir ? hooks_.credentials_dir(*task) : ""; !dir.empty()) {
    r->set_credentials_dir(dir);
  }
  if (task->deadline != absl::InfiniteFuture()) r->set_deadline(Rfc3339(task->deadline));
  Log()->info("task {} created: {} for {} intent {} mode {}", task->id, task->spiffe_id,
              task->principal.empty() ? "-" : task->principal,
              task->intent.empty() ? "-" : task->intent, identity::TaskModeName(task->mode));
  return resp;
}

v1::Response ControlService::TaskStarted(const api::PeerCred& peer,
                                         const v1::TaskStartedRequest& req) {
  std::shared_ptr<Task> t = d_.registry.Find(req.task_id());
  if (!t) return Error(absl::NotFoundError(absl::StrCat("no task ", req.task_id())));
  if (req.place() && req.started()) {
    // The launcher's child waits on a pipe until this returns. Only the launcher's own child of a
    // task that has not started yet is moved: no client can use this to pull another process into a
    // task.
    if (t->state.load() != TaskState::kPending) {
      return Error(absl::FailedPreconditionError(absl::StrCat("task ", t->id, " already started")));
    }
    const uint32_t ppid = ParentOf(req.pid());
    if (ppid == 0 || ppid != static_cast<uint32_t>(peer.pid)) {
      return Error(absl::PermissionDeniedError(
          absl::StrCat("pid ", req.pid(), " is not the caller's child")));
    }
    if (absl::Status st = d_.tasks.Place(*t, static_cast<pid_t>(req.pid())); !st.ok())
      return Error(st);
  }
  if (!req.started()) {
    // The launcher could not start the command: the task ends now (cgroup, map slot and registry
    // entry removed when housekeeping ends it, on the pipeline thread).
    Log()->info("task {} aborted: {}", t->id, req.error());
    t->SetAbortReason(req.error().empty() ? "launcher failed" : req.error());
    t->state = TaskState::kRunning;  // housekeeping ends it as soon as its cgroup is empty
    return v1::Response();
  }
  // A required credential that cannot be issued fails the start: the launcher does not run the
  // command and aborts the task (which revokes whatever was issued).
  if (absl::Status st = d_.tasks.OnStarted(*t, peer); !st.ok()) {
    Log()->warn("task {}: start refused: {}", t->id, std::string(st.message()));
    return Error(st);
  }
  t->state = TaskState::kRunning;
  v1::Response resp;
  if (req.place() && hooks_.protect) hooks_.protect(resp.mutable_placed());
  return resp;
}

v1::Response ControlService::TaskAction(const api::PeerCred& peer, const v1::Request& req) {
  const v1::TaskRequest& tr = req.has_kill_task()     ? req.kill_task()
                              : req.has_freeze_task() ? req.freeze_task()
                              : req.has_thaw_task()   ? req.thaw_task()
                                                      : req.revoke_task();
  if (PeerIsInTask(peer)) {
    return Error(absl::PermissionDeniedError("a process inside a task cannot control tasks"));
  }
  std::shared_ptr<Task> t = d_.registry.Find(tr.task_id());
  if (!t) return Error(absl::NotFoundError(absl::StrCat("no task ", tr.task_id())));
  std::string reason = tr.reason().empty() ? absl::StrCat("by uid ", peer.uid) : tr.reason();
  bool ok = true;
  if (req.has_kill_task()) {
    ok = d_.tasks.Kill(*t, nullptr, reason);
  } else if (req.has_freeze_task()) {
    ok = d_.tasks.Freeze(*t, true, nullptr, reason);
  } else if (req.has_thaw_task()) {
    ok = d_.tasks.Freeze(*t, false, nullptr, reason);
  } else {
    d_.tasks.Revoke(*t, 0, reason);
  }
  if (!ok) return Error(absl::InternalError("action failed; see writd's log"));
  return v1::Response();
}

v1::Response ControlService::ListApprovals(const api::PeerCred& peer) {
  v1::Response resp;
  for (const ApprovalRequest& r : d_.approvals.List()) {
    v1::Approval* a = resp.mutable_approvals()->add_approvals();
    a->set_id(r.id);
    a->set_action(absl::StrCat(r.task_id, " ", r.action));
    a->set_action_hash(r.action_hash);
    a->set_expires(Rfc3339(r.expires));
    a->set_reason(r.rule);
  }
  resp.mutable_approvals();
  return resp;
}

v1::Response ControlService::Decide(const api::PeerCred& peer, const v1::ApprovalDecision& d) {
  // An agent must never approve itself: refuse any caller inside a task cgroup.
  if (PeerIsInTask(peer)) {
    return Error(absl::PermissionDeniedError(
        "approvals cannot come from a process inside a task: ask a human outside it"));
  }
  std::optional<ApprovalRequest> r = d_.approvals.Take(d.id());
  if (!r) {
    return Error(absl::NotFoundError(
        absl::StrCat("no pending approval ", d.id(), " (unknown, decided or expired)")));
  }
  std::shared_ptr<Task> t = d_.registry.Find(r->task_id);
  if (!t) return Error(absl::NotFoundError(absl::StrCat("task ", r->task_id, " has ended")));
  std::string who = absl::StrCat("uid ", peer.uid);
  if (struct passwd* pw = getpwuid(peer.uid))
    who = absl::StrCat(pw->pw_name, " (uid ", peer.uid, ")");
  v1::Event a = ActionEvent(d_.output, *t, d.approve() ? "approve" : "deny", "ok",
                            r->cause.ktime_ns(), r->id, d.reason());
  v1::Approval* ap = a.mutable_approval();
  ap->set_id(r->id);
  ap->set_action(r->action);
  ap->set_action_hash(r->action_hash);
  ap->set_decided_by(who);
  ap->set_scope(d.scope().empty() ? "once" : d.scope());
  ap->set_reason(d.reason());
  d_.output.Emit(a);
  if (d.approve()) {
    if (d.scope() == "task") d_.approvals.Grant(t->id, r->action_hash);
    if (r->kind == "connect") {
      // The kernel refused the connect (EPERM); from now on it allows exactly this destination.
      if (absl::Status st = d_.tasks.GrantConnect(*t, r->cause.network()); !st.ok()) {
        Log()->error("task {}: grant connect: {}", t->id, std::string(st.message()));
      }
      d_.approvals.Grant(t->id, r->action_hash);
    }
    if (r->kind == "exec") (void)d_.tasks.Signal(r->pid, r->start_ns, SIGCONT);
    d_.tasks.Freeze(*t, false, &r->cause, "approved by " + who);
  } else {
    (void)d_.tasks.Signal(r->pid, r->start_ns, SIGKILL);
    d_.tasks.Freeze(*t, false, &r->cause, "denied by " + who);
    d_.tasks.RunResponses(*t, r->cause, r->responses,
                          "approval denied by " + who + ": " + r->action);
  }
  return v1::Response();
}

v1::Response ControlService::Reload(const api::PeerCred& peer) {
  if (PeerIsInTask(peer)) {
    return Error(absl::PermissionDeniedError("a process inside a task cannot reload policies"));
  }
  // The pipeline thread applies it; wait briefly so the caller sees the outcome.
  if (absl::Status st = d_.policies.ReloadAndWait(absl::Seconds(2)); !st.ok()) return Error(st);
  v1::Response resp;
  resp.mutable_reload()->set_intents(d_.policies.Get()->intents().size());
  return resp;
}

}  // namespace writ::daemon
