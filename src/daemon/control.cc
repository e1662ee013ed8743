#include "daemon/control.h"

#include <signal.h>

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/events.h"
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

std::string UserName(uint32_t uid) {
  if (std::optional<UserEntry> u = LookupUser(uid)) return u->name;
  return absl::StrCat("uid ", uid);
}

const char* RequestName(const v1::Request& req) {
  switch (req.body_case()) {
    case v1::Request::kCreateTask:
      return "create_task";
    case v1::Request::kTaskStarted:
      return "task_started";
    case v1::Request::kStatus:
      return "status";
    case v1::Request::kTail:
      return "tail";
    case v1::Request::kKillTask:
      return "kill";
    case v1::Request::kFreezeTask:
      return "freeze";
    case v1::Request::kThawTask:
      return "thaw";
    case v1::Request::kRevokeTask:
      return "revoke";
    case v1::Request::kListApprovals:
      return "approvals";
    case v1::Request::kDecideApproval:
      return "decide";
    case v1::Request::kReloadPolicy:
      return "reload";
    case v1::Request::kApplyPolicyBundle:
      return "apply_policy_bundle";
    case v1::Request::kToolCall:
      return "tool_call";
    case v1::Request::kConsoleLogin:
      return "console_login";
    default:
      return "unknown";
  }
}

}  // namespace

ControlService::ControlService(Deps deps, Hooks hooks, Options opts)
    : d_(deps), hooks_(std::move(hooks)), opts_(std::move(opts)) {}

ControlService::Caller ControlService::Classify(const api::Peer& peer) const {
  Caller c;
  const std::string prefix = "/" + opts_.cgroup_subtree + "/";
  if (absl::StartsWith(peer.cgroup, prefix)) {
    c.in_task = true;
    std::string rest = peer.cgroup.substr(prefix.size());
    c.task_id = rest.substr(0, rest.find('/'));
    c.task = d_.registry.Find(c.task_id);
  } else {
    c.admin = peer.cred.uid == 0 ||
              (opts_.admin_gid >= 0 && peer.InGroup(static_cast<gid_t>(opts_.admin_gid)));
  }
  return c;
}

bool ControlService::Sees(const api::Peer& peer, const Caller& c, const Task& t) const {
  if (c.admin) return true;
  // A task sees itself and the sub-agents it delegated to, nothing else.
  if (c.in_task) return t.id == c.task_id || t.parent_task == c.task_id;
  return t.owner_uid == peer.cred.uid;
}

v1::Response ControlService::Refuse(const api::Peer& peer, const Caller& c, const char* request,
                                    const absl::Status& why) {
  refused_++;
  if (!c.in_task) return Error(why);
  refused_from_tasks_++;
  Log()->warn("task {}: refused {} from pid {} inside it: {}", c.task_id, request, peer.cred.pid,
              std::string(why.message()));
  if (!c.task) return Error(why);  // the task has ended: nothing of it left to respond on
  v1::Process p;
  p.set_pid(static_cast<uint32_t>(peer.cred.pid));
  p.set_uid(peer.cred.uid);
  p.set_gid(peer.cred.gid);
  SelfFinding(*c.task, &p, "control", "control socket", request, why);
  return Error(why);
}

void ControlService::RefuseTaskCaller(const std::string& task_id, const char* channel,
                                      const char* request, const absl::Status& why) {
  refused_++;
  refused_from_tasks_++;
  Log()->warn("task {}: refused {} on the {} from inside it: {}", task_id, request, channel,
              std::string(why.message()));
  if (std::shared_ptr<Task> t = d_.registry.Find(task_id)) {
    SelfFinding(*t, nullptr, channel, channel, request, why);
  }
}

void ControlService::SelfFinding(Task& t, const v1::Process* p, const char* channel,
                                 const char* channel_name, const char* request,
                                 const absl::Status& why) {
  // A process of the task tried to use writd against its own writ: a self-protection finding, like
  // a syscall aimed at writd, and the task's responses (in enforce mode).
  v1::Event ev = d_.output.NewEvent("self");
  FillAgent(t, &ev);
  if (p) *ev.mutable_process() = *p;
  v1::Syscall* sc = ev.mutable_syscall();
  sc->set_name(absl::StrCat(channel, ":", request));
  sc->set_target("writd");
  ev.set_verdict("violation");
  ev.set_outcome("prevented");  // refused by writd, whatever the mode
  ev.set_enforcement("writd");
  v1::Finding* f = ev.mutable_finding();
  f->set_rule(absl::StrCat("writ/self.", channel, ".", request));
  f->set_category("self");
  f->set_reason(absl::StrCat("a process inside task ", t.id, " used writd's ", channel_name,
                             " against its writ (", request, "): ", why.message()));
  for (const char* fw : {"OWASP-ASI10", "OWASP-ASI03", "MAESTRO-L4"}) f->add_frameworks(fw);
  std::vector<std::string> responses = {"alert", "kill"};
  if (t.compiled && !t.compiled->responses().empty()) responses = t.compiled->responses();
  for (const auto& r : responses) f->add_responses(r);
  f->set_severity("critical");
  const bool enforce = t.mode == identity::TaskMode::kEnforce;
  if (enforce) {
    t.violated = true;
    if (std::find(responses.begin(), responses.end(), "revoke") != responses.end()) {
      d_.tasks.MarkRevoked(t);
    }
  }
  d_.output.Emit(ev);
  if (enforce) d_.tasks.RunResponses(t, ev, responses, f->reason());
}

std::optional<v1::Response> ControlService::RequireAdmin(const api::Peer& peer, const Caller& c,
                                                         const char* request) {
  if (c.admin) return std::nullopt;
  if (c.in_task) {
    return Refuse(peer, c, request,
                  absl::PermissionDeniedError(absl::StrCat("a process inside a task cannot ",
                                                           request, " (ask a human outside it)")));
  }
  return Refuse(peer, c, request,
                absl::PermissionDeniedError(
                    absl::StrCat(request, " is for writd's admins (root or the admin group), not ",
                                 UserName(peer.cred.uid))));
}

void ControlService::Handle(const api::Peer& peer, int fd, const v1::Request& req) {
  v1::Response resp;
  switch (req.body_case()) {
    case v1::Request::kCreateTask:
      resp = CreateTask(peer, req.create_task());
      break;
    case v1::Request::kTaskStarted:
      resp = TaskStarted(peer, req.task_started());
      break;
    case v1::Request::kStatus:
      resp = Status(peer);
      break;
    case v1::Request::kTail: {
      const Caller c = Classify(peer);
      v1::TailRequest filter = req.tail();
      if (c.in_task && !filter.task().empty() && filter.task() != c.task_id) {
        resp = Refuse(peer, c, "tail",
                      absl::PermissionDeniedError(absl::StrCat("a process inside task ", c.task_id,
                                                               " may tail only its own task")));
        break;
      }
      if (c.in_task) filter.set_task(c.task_id);
      auto visible = [this, peer, c](const v1::Event& ev) {
        if (c.admin) return true;
        std::shared_ptr<Task> t = d_.registry.Find(ev.agent().task_id());
        return t && Sees(peer, c, *t);
      };
      hooks_.tail(fd, filter, std::move(visible));
      return;
    }
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
    case v1::Request::kApplyPolicyBundle:
      resp = ApplyBundle(peer, req.apply_policy_bundle());
      break;
    case v1::Request::kToolCall:
      resp = ToolCall(peer, req.tool_call());
      break;
    case v1::Request::kConsoleLogin:
      resp = ConsoleLogin(peer);
      break;
    default:
      resp = Error(absl::InvalidArgumentError("unknown or empty request"));
  }
  (void)api::WriteFrame(fd, resp);
}

v1::Response ControlService::CreateTask(const api::Peer& peer, const v1::CreateTaskRequest& req) {
  const Caller c = Classify(peer);
  // A process inside a task may only delegate from its own task: a new top-level task (or another
  // task's child) would be a way out of its intent.
  if (c.in_task && req.parent_task() != c.task_id) {
    return Refuse(peer, c, "create_task",
                  absl::PermissionDeniedError(absl::StrCat(
                      "a process inside task ", c.task_id,
                      " can only start sub-agents of it (writ run --parent ", c.task_id, ")")));
  }
  auto id = identity::ParseSpiffeId(req.spiffe_id());
  if (!id.ok()) return Error(id.status());

  // Who the command runs as. The launcher (root, or the caller itself) asks; writd decides.
  const uint32_t caller_uid = peer.cred.uid;
  const uint32_t run_uid = req.has_run_uid() ? req.run_uid() : caller_uid;
  if (req.allow_root() && caller_uid != 0) {
    return Refuse(peer, c, "create_task",
                  absl::PermissionDeniedError(absl::StrCat("--allow-root: ", UserName(caller_uid),
                                                           " cannot start a root task")));
  }
  if (run_uid != caller_uid && caller_uid != 0) {
    return Refuse(peer, c, "create_task",
                  absl::PermissionDeniedError(
                      absl::StrCat("only root may run a task as another user (",
                                   UserName(caller_uid), " asked for ", UserName(run_uid), ")")));
  }
  if (req.allow_root() != (run_uid == 0)) {
    return Refuse(
        peer, c, "create_task",
        absl::PermissionDeniedError(
            req.allow_root()
                ? std::string("--allow-root asks for root, but the task would run as ") +
                      UserName(run_uid)
                : std::string("the agent would run as root: run it as an unprivileged user "
                              "(writ run --user NAME), or opt in with --allow-root and an "
                              "intent that sets run_as_root: true")));
  }

  auto task = std::make_shared<Task>();
  task->id = "t-" + RandomHex(6);
  task->spiffe_id = id->ToString();
  task->principal = req.principal();
  task->intent = req.intent();
  task->command.assign(req.command().begin(), req.command().end());
  task->owner_uid = caller_uid;
  task->run_uid = run_uid;
  task->root = run_uid == 0;
  task->launcher_conn = peer.conn_id;
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
    if (task->root && !parent->root) {
      return Refuse(peer, c, "create_task",
                    absl::PermissionDeniedError(absl::StrCat(
                        "a root sub-agent of task ", parent->id, ", which does not run as root")));
    }
  } else if (!task->principal.empty()) {
    task->chain.push_back(task->principal);
  }
  task->chain.push_back(task->spiffe_id);

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
    task->charter = spec->source().file();
    task->charter_sha256 = spec->source().sha256();
    // A sub-agent gets no authority its parent lacks (the parent's compiled intent, as it started).
    if (parent && parent->compiled) {
      absl::Status sub = intent::CheckSubset(*task->compiled, *parent->compiled);
      if (!sub.ok()) return Refuse(peer, c, "create_task", sub);
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
    return Refuse(peer, c, "create_task",
                  absl::PermissionDeniedError(absl::StrCat(
                      "a task without an intent (unrestricted) is not allowed by parent intent ",
                      parent->compiled->name())));
  }
  // Root needs an opt-in on the command line (checked above) and in the intent.
  if (task->root && (!task->compiled || !task->compiled->run_as_root())) {
    return Refuse(peer, c, "create_task",
                  absl::PermissionDeniedError(
                      task->compiled ? absl::StrCat("intent ", task->compiled->name(),
                                                    " does not allow root (run_as_root: true)")
                                     : std::string("a root task needs an intent that allows root "
                                                   "(run_as_root: true)")));
  }

  // Nothing is created before every check has passed.
  if (absl::Status st = d_.tasks.Install(task, spec, 0); !st.ok()) return Error(st);
  // task_start precedes every event of the task: the command has not been started yet.
  v1::Event e = TaskStartEvent(d_.output, *task);
  e.mutable_process()->set_pid(static_cast<uint32_t>(peer.cred.pid));
  e.mutable_process()->set_uid(peer.cred.uid);
  d_.output.Emit(e);

  v1::Response resp;
  v1::CreateTaskResponse* r = resp.mutable_create_task();
  r->set_task_id(task->id);
  r->set_cgroup_path(task->cgroup_path);
  if (std::string dir = hooks_.credentials_dir ? hooks_.credentials_dir(*task) : ""; !dir.empty()) {
    r->set_credentials_dir(dir);
  }
  if (task->deadline != absl::InfiniteFuture()) r->set_deadline(Rfc3339(task->deadline));
  r->set_workload_socket(opts_.workload_socket);
  Log()->info("task {} created: {} for {} intent {} mode {} as {}{}", task->id, task->spiffe_id,
              task->principal.empty() ? "-" : task->principal,
              task->intent.empty() ? "-" : task->intent, identity::TaskModeName(task->mode),
              UserName(task->run_uid), task->root ? " (root: opted in)" : "");
  return resp;
}

v1::Response ControlService::TaskStarted(const api::Peer& peer, const v1::TaskStartedRequest& req) {
  const Caller c = Classify(peer);
  std::shared_ptr<Task> t = d_.registry.Find(req.task_id());
  // Only the connection that created the task starts it: a second connection (another process, or
  // the task itself) cannot place a process into it, abort it, or claim its credentials.
  if (!t || t->launcher_conn != peer.conn_id) {
    return Refuse(peer, c, "task_started",
                  t ? absl::PermissionDeniedError(
                          absl::StrCat("task ", t->id,
                                       " was created by another connection: only its launcher "
                                       "may start it"))
                    : absl::NotFoundError(absl::StrCat("no task ", req.task_id())));
  }
  if (req.place() && req.started()) {
    // The launcher's child waits on a pipe until this returns. Only the launcher's own child of a
    // task that has not started yet is moved.
    if (t->state.load() != TaskState::kPending) {
      return Error(absl::FailedPreconditionError(absl::StrCat("task ", t->id, " already started")));
    }
    const uint32_t ppid = ParentOf(req.pid());
    if (ppid == 0 || ppid != static_cast<uint32_t>(peer.cred.pid)) {
      return Refuse(peer, c, "task_started",
                    absl::PermissionDeniedError(
                        absl::StrCat("pid ", req.pid(), " is not the caller's child")));
    }
    if (absl::Status st = d_.tasks.Place(*t, static_cast<pid_t>(req.pid())); !st.ok()) {
      return Error(st);
    }
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
  if (absl::Status st = d_.tasks.OnStarted(*t, peer.cred); !st.ok()) {
    Log()->warn("task {}: start refused: {}", t->id, std::string(st.message()));
    return Error(st);
  }
  t->state = TaskState::kRunning;
  v1::Response resp;
  if (req.place() && hooks_.protect) hooks_.protect(resp.mutable_placed());
  return resp;
}

v1::Response ControlService::Status(const api::Peer& peer) {
  const Caller c = Classify(peer);
  v1::Response resp;
  v1::StatusResponse* s = resp.mutable_status();
  hooks_.status(s);
  if (c.admin) return resp;
  // Others see the tasks they may see; a task sees neither the host's hooks nor its counters (what
  // is not watched would be a map of the way around writ).
  auto* tasks = s->mutable_tasks();
  tasks->erase(std::remove_if(tasks->begin(), tasks->end(),
                              [&](const v1::TaskSummary& ts) {
                                std::shared_ptr<Task> t = d_.registry.Find(ts.task_id());
                                return !t || !Sees(peer, c, *t);
                              }),
               tasks->end());
  if (c.in_task) {
    s->clear_hooks();
    s->clear_enforcement();
    s->clear_counters();
    s->clear_events_by_kind();
    s->clear_drops_by_kind();
    s->clear_approvals_pending();
    s->clear_policy_error();
  }
  return resp;
}

v1::Response ControlService::TaskAction(const api::Peer& peer, const v1::Request& req) {
  const Caller c = Classify(peer);
  if (auto refused = RequireAdmin(peer, c, RequestName(req))) return *refused;
  const v1::TaskRequest& tr = req.has_kill_task()     ? req.kill_task()
                              : req.has_freeze_task() ? req.freeze_task()
                              : req.has_thaw_task()   ? req.thaw_task()
                                                      : req.revoke_task();
  return TaskActionAs(UserName(peer.cred.uid), RequestName(req), tr);
}

v1::Response ControlService::TaskActionAs(const std::string& who, const std::string& action,
                                          const v1::TaskRequest& tr) {
  std::shared_ptr<Task> t = d_.registry.Find(tr.task_id());
  if (!t) return Error(absl::NotFoundError(absl::StrCat("no task ", tr.task_id())));
  const std::string reason = tr.reason().empty() ? absl::StrCat("by ", who) : tr.reason();
  bool ok = true;
  if (action == "kill") {
    ok = d_.tasks.Kill(*t, nullptr, reason);
  } else if (action == "freeze") {
    ok = d_.tasks.Freeze(*t, true, nullptr, reason);
  } else if (action == "thaw") {
    ok = d_.tasks.Freeze(*t, false, nullptr, reason);
  } else if (action == "revoke") {
    d_.tasks.Revoke(*t, 0, reason);
  } else {
    return Error(absl::InvalidArgumentError(
        absl::StrCat("unknown task action \"", action, "\" (kill, freeze, thaw, revoke)")));
  }
  if (!ok) return Error(absl::InternalError("action failed; see writd's log"));
  return v1::Response();
}

v1::Response ControlService::ListApprovals(const api::Peer& peer) {
  const Caller c = Classify(peer);
  v1::Response resp;
  for (const ApprovalRequest& r : d_.approvals.List()) {
    if (!c.admin) {
      std::shared_ptr<Task> t = d_.registry.Find(r.task_id);
      if (!t || !Sees(peer, c, *t)) continue;
    }
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

v1::Response ControlService::Decide(const api::Peer& peer, const v1::ApprovalDecision& d) {
  // An agent must never approve itself, and only an admin decides for anyone.
  const Caller c = Classify(peer);
  if (auto refused = RequireAdmin(peer, c, d.approve() ? "approve" : "deny")) return *refused;
  return DecideAs(absl::StrCat(UserName(peer.cred.uid), " (uid ", peer.cred.uid, ")"),
                  "control socket", d);
}

v1::Response ControlService::DecideAs(const std::string& who, const std::string& via,
                                      const v1::ApprovalDecision& d) {
  if (!d.scope().empty() && d.scope() != "once" && d.scope() != "task") {
    return Error(
        absl::InvalidArgumentError(absl::StrCat("scope \"", d.scope(), "\" is not once or task")));
  }
  std::optional<ApprovalRequest> r = d_.approvals.Take(d.id());
  if (!r) {
    return Error(absl::NotFoundError(
        absl::StrCat("no pending approval ", d.id(), " (unknown, decided or expired)")));
  }
  std::shared_ptr<Task> t = d_.registry.Find(r->task_id);
  if (!t) return Error(absl::NotFoundError(absl::StrCat("task ", r->task_id, " has ended")));
  v1::Event a = ActionEvent(d_.output, *t, d.approve() ? "approve" : "deny", "ok",
                            r->cause.ktime_ns(), r->id, d.reason());
  v1::Approval* ap = a.mutable_approval();
  ap->set_id(r->id);
  ap->set_action(r->action);
  ap->set_action_hash(r->action_hash);
  ap->set_decided_by(who);
  ap->set_decided_via(via);
  ap->set_scope(d.scope().empty() ? "once" : d.scope());
  ap->set_reason(d.reason());
  d_.output.Emit(a);
  if (r->kind == "tool_call") {
    // A held MCP tool call: nothing of the task is stopped or frozen; its gateway polls for this.
    if (d.approve() && d.scope() == "task") d_.approvals.Grant(t->id, r->action_hash);
    if (d_.tool_calls) d_.tool_calls->Decided(*r, d.approve(), who);
    return v1::Response();
  }
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
    // With a kill response the task dies before it is thawed: thawed first, the agent's shell would
    // be woken by the denied child's death and could run its next command before the kill lands.
    if (std::find(r->responses.begin(), r->responses.end(), "kill") != r->responses.end()) {
      (void)d_.tasks.KillNow(*t);
    }
    (void)d_.tasks.Signal(r->pid, r->start_ns, SIGKILL);
    d_.tasks.Freeze(*t, false, &r->cause, "denied by " + who);
    d_.tasks.RunResponses(*t, r->cause, r->responses,
                          "approval denied by " + who + ": " + r->action);
  }
  return v1::Response();
}

// The launcher's MCP gateway: only on the connection that created the task, and never from inside a
// task (a tool server reporting its own calls, or approving them, would be the agent grading
// itself).
v1::Response ControlService::ToolCall(const api::Peer& peer, const v1::ToolCallReport& r) {
  const Caller c = Classify(peer);
  std::shared_ptr<Task> t = d_.registry.Find(r.task_id());
  if (c.in_task || !t || t->launcher_conn != peer.conn_id) {
    if (d_.tool_calls) d_.tool_calls->NoteRefused();
    return Refuse(peer, c, "tool_call",
                  c.in_task ? absl::PermissionDeniedError(absl::StrCat(
                                  "a process inside task ", c.task_id,
                                  " cannot report tool calls (only the launcher outside it can)"))
                  : t       ? absl::PermissionDeniedError(
                                  absl::StrCat("task ", t->id,
                                               " was created by another connection: only its "
                                                     "launcher reports its tool calls"))
                      : absl::NotFoundError(absl::StrCat("no task ", r.task_id())));
  }
  if (!d_.tool_calls) return Error(absl::UnimplementedError("tool calls are not tracked"));
  v1::Response resp;
  *resp.mutable_tool() = d_.tool_calls->Report(*t, r);
  return resp;
}

// A login link is an admin's authority handed to a browser: admins only, never from inside a task.
v1::Response ControlService::ConsoleLogin(const api::Peer& peer) {
  const Caller c = Classify(peer);
  if (auto refused = RequireAdmin(peer, c, "console_login")) return *refused;
  if (!hooks_.console_login) {
    return Error(absl::FailedPreconditionError(
        "the approvals console is off (console: in writd.yaml, or writd --console ADDR:PORT)"));
  }
  absl::StatusOr<v1::ConsoleLoginResponse> r =
      hooks_.console_login(absl::StrCat(UserName(peer.cred.uid), " (uid ", peer.cred.uid, ")"));
  if (!r.ok()) return Error(r.status());
  v1::Response resp;
  *resp.mutable_console_login() = *r;
  return resp;
}

v1::Response ControlService::Reload(const api::Peer& peer) {
  const Caller c = Classify(peer);
  if (auto refused = RequireAdmin(peer, c, "reload")) return *refused;
  // The pipeline thread applies it; wait briefly so the caller sees the outcome.
  if (absl::Status st = d_.policies.ReloadAndWait(absl::Seconds(2)); !st.ok()) return Error(st);
  v1::Response resp;
  resp.mutable_reload()->set_intents(d_.policies.Get()->intents().size());
  return resp;
}

v1::Response ControlService::ApplyBundle(const api::Peer& peer,
                                         const v1::PolicyBundleRequest& req) {
  const Caller c = Classify(peer);
  if (auto refused = RequireAdmin(peer, c, "apply_policy_bundle")) return *refused;
  if (!hooks_.apply_bundle) {
    return Error(absl::UnimplementedError("this writd does not take policy bundles"));
  }
  absl::StatusOr<v1::PolicyBundleState> st = hooks_.apply_bundle(
      req.envelope(), absl::StrCat(UserName(peer.cred.uid), " (uid ", peer.cred.uid, ")"));
  if (!st.ok()) return Error(st.status());
  v1::Response resp;
  resp.mutable_reload()->set_intents(d_.policies.Get()->intents().size());
  *resp.mutable_reload()->mutable_bundle() = *st;
  return resp;
}

}  // namespace writ::daemon
