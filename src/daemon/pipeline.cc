#include "daemon/pipeline.h"

#include <arpa/inet.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "creds/redact.h"
#include "daemon/dns_egress.h"
#include "daemon/events.h"
#include "daemon/tool_calls.h"
#include "identity/proc_path.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskMode;

namespace {

// A counter only the pipeline thread writes (others read it): a relaxed load and store, not a
// locked read-modify-write per event.
inline void Bump(std::atomic<uint64_t>& c, uint64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

bool Has(const std::vector<std::string>& v, const char* s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// What a finding's reason names: the program, script, destination or file the verdict was about.
std::string FindingTarget(EventKind kind, const v1::Event& ev, const intent::Verdict& v) {
  switch (kind) {
    case EventKind::kExec:
      if (v.by_script)
        return absl::StrCat(ev.process().script(), " (run by ", ev.process().exe(), ")");
      // The program the loader runs when the rule matched it; the loader itself when it was what
      // matched (an exec.deny of ld.so).
      if (v.by_loaded) {
        return absl::StrCat(ev.process().loaded(), " (loaded by ", ev.process().exe(), ")");
      }
      return ev.process().exe();
    case EventKind::kConnect:
      if (ev.network().family() == "unix") {
        if (v.by_second) {
          return absl::StrCat(ev.network().path(), " (the socket ", ev.network().peer_path(), ")");
        }
        return ev.network().path();
      }
      return absl::StrCat(ev.network().send() ? "datagram to " : "", ev.network().dst_ip(), ":",
                          ev.network().dst_port());
    case EventKind::kLink:
      return absl::StrCat(ev.file().syscall(), " ", ev.file().path(), " -> ", ev.file().new_path());
    default:
      if (v.by_file_id) {
        return absl::StrCat(ev.file().path(),
                            " (the same file under another name: a hard link or bind mount)");
      }
      return ev.file().path();
  }
}

// Self-protection findings: a task's process aimed a syscall at writd, its guardian or another
// process (kill family, ptrace attach, process_vm_*, pidfd_getfd), or at writ's enforcement itself
// (bpf, io_uring). The kernel side (bpf/writ_self.bpf.h) reports each attempt; the launcher's
// seccomp filter (src/actions/self_filter.cc) has usually refused it already.
std::string SelfReason(const v1::Syscall& sc) {
  const std::string& n = sc.name();
  if (n == "bpf") return "a task may not use bpf(): it could detach or override writ's programs";
  if (n == "init_module" || n == "finit_module") {
    return "a task may not load kernel modules: a module runs in the kernel, beyond every hook";
  }
  if (n == "kexec_load" || n == "kexec_file_load") {
    return "a task may not load a kernel to boot: kexec replaces the kernel writ runs in";
  }
  if (n == "setpgid") {
    return absl::StrCat("setpgid into the process group of ", sc.target(), " (", sc.target_pid(),
                        "): kill(0) would then signal it");
  }
  if ((n == "fcntl" || n == "ioctl") && sc.target() != "writd" && sc.target() != "guardian") {
    return absl::StrCat(
        n, " handing signal ownership (F_SETOWN_EX, FIOSETOWN, SIOCSPGRP)",
        sc.target_pid() ? absl::StrCat(" to pid ", sc.target_pid()) : "",
        ": refused outright, its target is behind a pointer the filter cannot read");
  }
  if (n == "fcntl" || n == "ioctl") {
    return absl::StrCat(n, " making ", sc.target(), " (pid ", sc.target_pid(),
                        ") the owner of a file's signals: the kernel would signal it, SIGKILL "
                        "included, when the file becomes ready");
  }
  if (n.rfind("io_uring", 0) == 0) {
    return "a task may not use io_uring: its operations bypass the syscall tracepoints writ judges";
  }
  if (sc.target() == "writd" || sc.target() == "guardian") {
    return absl::StrCat(n, " aimed at ", sc.target(), " (pid ", sc.target_pid(),
                        "): a task may not signal, trace or open writ's own processes");
  }
  if (sc.target() == "all") return absl::StrCat(n, "(-1): a task may not signal every process");
  return absl::StrCat(n, " of another process",
                      sc.target_pid() ? absl::StrCat(" (pid ", sc.target_pid(), ")") : "",
                      ": a task may not trace or reach into other processes' memory or files");
}

}  // namespace

void LatencyHistogram::Record(int64_t us) {
  if (us < 0) us = 0;
  const int b = static_cast<int>(std::lower_bound(std::begin(kBoundsUs), std::end(kBoundsUs), us) -
                                 std::begin(kBoundsUs));
  Bump(buckets_[b]);
  Bump(sum_us_, static_cast<uint64_t>(us));
  Bump(count_);
}

Pipeline::Pipeline(Deps deps, int64_t boot_to_unix_ns, std::string boot_tag)
    : d_(deps), boot_to_unix_ns_(boot_to_unix_ns), decoder_(boot_to_unix_ns, std::move(boot_tag)) {}

std::shared_ptr<Task> Pipeline::TaskFor(uint64_t cgroup_id) {
  uint64_t gen = d_.registry.generation();
  if (cached_task_ && cached_task_->cgroup_id == cgroup_id && gen == cached_generation_) {
    return cached_task_;
  }
  cached_task_ = d_.registry.FindByCgroup(cgroup_id);
  cached_generation_ = gen;
  return cached_task_;
}

void Pipeline::OnRecord(const void* data, size_t size) {
  if (decode::IsAdoptRecord(data, size)) {  // an exec outside every task: see adopt.cc
    if (!adopt_handler_ || !adopt_handler_(data, size)) Bump(counters_.decode_errors);
    return;
  }
  decode::RecordInfo info;
  // Decode clears the event, which would delete the agent and its strings; FillAgent refills it for
  // every attributed record, so keep it (and its buffers) aside instead.
  if (ev_.has_agent()) spare_agent_.reset(ev_.release_agent());
  if (!decoder_.Decode(data, size, &ev_, &info).ok()) {
    Bump(counters_.decode_errors);
    return;
  }
  std::shared_ptr<Task> task = TaskFor(info.cgroup_id);
  if (!task) {
    Bump(counters_
             .unattributed);  // a record from a task already removed: counted, never silently gone
    return;
  }
  Bump(counters_.events_by_kind[static_cast<int>(info.kind)]);
  // The agent is the task's identity: when this record's task is the one the kept agent was filled
  // for, it is already right (tasks' identity fields never change once registered).
  const bool agent_current = spare_agent_ && agent_task_ == task;
  if (spare_agent_) {
    if (!agent_current) spare_agent_->Clear();
    ev_.set_allocated_agent(spare_agent_.release());
  }
  if (!agent_current) {
    FillAgent(*task, &ev_);
    agent_task_ = task;
  }

  // Process table: exact lineage and the exe of every process, keyed by (tgid, start time).
  v1::Process* p = ev_.mutable_process();
  bool created = false;
  identity::ProcessInfo* pi = d_.procs.Upsert(info.tgid, info.start_time_ns, &created);
  if (pi) {
    if (created) {
      pi->cgroup_id = info.cgroup_id;
      pi->ppid = p->ppid();
      task->live_processes++;
    }
    switch (info.kind) {
      case EventKind::kExec:
        // argv is judged as it is and redacted before it is emitted (below).
        if (info.script) ResolveScript(info, p);
        if (info.loader) ResolveLoaded(info, p);
        // The kernel's walk stopped short of the root: exe is a tail, which rules must not allow.
        if (info.path_truncated) p->set_unresolved(true);
        pi->exe = p->exe();
        pi->args.assign(p->args().begin(), p->args().end());
        break;
      case EventKind::kExit:
        p->set_exe(pi->exe);
        d_.procs.Erase(info.tgid, info.start_time_ns);
        task->live_processes--;
        break;
      default:
        p->set_exe(pi->exe);
        break;
    }
  }
  if (dns_ && info.kind == EventKind::kConnect && ev_.network().family() != "unix") {
    // The name whose DNS answer pinned this address for the task, when that pin was live at the
    // connect: the same test the kernel made (bpf/writ_common.bpf.h net_verdict).
    uint8_t a[16] = {};
    int fam = 0;
    const std::string& ip = ev_.network().dst_ip();
    if (inet_pton(AF_INET, ip.c_str(), a) == 1) {
      fam = AF_INET;
    } else if (inet_pton(AF_INET6, ip.c_str(), a) == 1) {
      fam = AF_INET6;
      static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(a, kMapped, 12) == 0) {
        std::memmove(a, a + 12, 4);
        std::memset(a + 4, 0, 12);
        fam = AF_INET;
      }
    }
    if (fam != 0) {
      std::string host = dns_->NameFor(task->id, fam, a, info.ktime_ns);
      if (!host.empty()) ev_.mutable_network()->set_host(std::move(host));
    }
  }
  // The MCP tool call in flight when it happened (only tasks with a gateway have any).
  std::shared_ptr<const intent::CompiledIntent> during;  // tools.during of the one call in flight
  const int calls =
      tool_calls_ && tool_calls_->active() ? tool_calls_->Annotate(*task, &ev_, &during) : 0;
  if (info.kind == EventKind::kSelf) {
    JudgeSelf(*task, ev_, info);
  } else if (task->compiled && task->mode != TaskMode::kRecord) {
    Judge(*task, ev_, info);
    if (during && ev_.verdict() != "violation" && ev_.verdict() != "needs_approval") {
      JudgeDuringCall(*task, ev_, info, *during);
    }
  }
  if (calls == 1 && ev_.verdict() == "violation") tool_calls_->NoteViolation(*task, ev_);
  // Judged on what happened, emitted without secrets: every string of the event is redacted before
  // the journal, the sinks and `writ tail` see it (the kept agent only when FillAgent refilled it
  // above).
  const creds::RedactionReport red = d_.redactor.RedactEvent(&ev_, {.agent = !agent_current});
  d_.output.Emit(ev_, /*batch=*/true, /*redacted=*/true);
  if (red.argv_marks > 0 && info.kind == EventKind::kExec) EmitSecretInArgv(*task, ev_, red);
  if (deferred_responses_) {
    const std::vector<std::string>* responses = deferred_responses_;
    deferred_responses_ = nullptr;
    d_.actions.RunResponses(*task, ev_, *responses, ev_.finding().reason());
  }
}

// A shebang exec: the kernel ran the interpreter and gave the script only as the name passed to
// execve. In enforce mode the process is stopped at this point (WRIT_TASK_EXEC_SCRIPT), so its cwd
// and fds are the ones the kernel used. The kernel's copy of the name holds WRIT_NAME_MAX - 1
// bytes; a longer name is taken whole from argv, where binfmt_script put it.
void Pipeline::ResolveScript(const decode::RecordInfo& info, v1::Process* p) {
  std::string name = p->filename();
  if (name.size() >= WRIT_NAME_MAX - 1) {
    std::string whole = identity::ArgWithPrefix(static_cast<pid_t>(info.tgid), name);
    if (!whole.empty()) name = std::move(whole);
  }
  std::string script = identity::ResolveProcessPath(static_cast<pid_t>(info.tgid), name,
                                                    /*follow_symlinks=*/true);
  // Unresolvable (the process is gone): the name as passed; a deny of an absolute path still holds.
  p->set_script(script.empty() ? name : std::move(script));
}

void Pipeline::ResolveLoaded(const decode::RecordInfo& info, v1::Process* p) {
  // The kernel keeps 16 arguments of 256 bytes: the stopped process's own argv when that was cut.
  google::protobuf::RepeatedPtrField<std::string> whole;
  const google::protobuf::RepeatedPtrField<std::string>* argv = &p->args();
  bool cut = p->args_truncated();
  if (cut) {
    if (auto cmdline = ReadFile(absl::StrCat("/proc/", info.tgid, "/cmdline")); cmdline.ok()) {
      for (absl::string_view a : absl::StrSplit(*cmdline, '\0')) whole.Add(std::string(a));
      if (!whole.empty() && whole.Get(whole.size() - 1).empty()) whole.RemoveLast();
      argv = &whole;
      cut = false;
    }
  }
  const intent::LoadedProgram lp = intent::DynamicLoaderProgram(*argv, cut);
  if (lp.index == 0) return;  // --help, --version, nothing: the loader runs no program
  if (lp.index < 0) {
    p->set_unresolved(
        true);  // an option this grammar does not know, or argv cut before the program
    return;
  }
  const std::string& name = argv->Get(lp.index);
  if (lp.bare) {
    // Without a '/' the loader looks the name up in library paths (--library-path, LD_LIBRARY_PATH,
    // its cache): not a path writ can judge.
    p->set_loaded(name);
    p->set_unresolved(true);
    return;
  }
  std::string path = identity::ResolveProcessPath(static_cast<pid_t>(info.tgid), name,
                                                  /*follow_symlinks=*/true);
  if (path.empty() && name[0] != '/') p->set_unresolved(true);  // the process is gone
  p->set_loaded(path.empty() ? name : std::move(path));
}

bool Pipeline::SettleUnix(v1::Event& ev, const decode::RecordInfo& info) {
  v1::Network* n = ev.mutable_network();
  if (!n->path().empty() && n->path()[0] != '/' && n->path()[0] != '@') {
    std::string abs = identity::ResolveProcessPath(static_cast<pid_t>(info.tgid), n->path(),
                                                   /*follow_symlinks=*/false);
    if (!abs.empty()) n->set_path(std::move(abs));
  }
  if (std::find(own_sockets_.begin(), own_sockets_.end(), n->path()) != own_sockets_.end() &&
      (n->peer_path().empty() || n->peer_path() == n->path())) {
    ev.set_verdict("allow");
    ev.set_outcome("allowed");
    return true;
  }
  return false;
}

void Pipeline::Judge(Task& task, v1::Event& ev, const decode::RecordInfo& info) {
  intent::EvalContext ctx;
  ctx.now = absl::FromUnixNanos(static_cast<int64_t>(info.ktime_ns) + boot_to_unix_ns_);
  ctx.live_processes = task.live_processes.load();
  if (info.kind == EventKind::kOpen && ev.file().unresolved() && !ev.file().path().empty() &&
      ev.file().path()[0] != '/') {
    // A failed open carries the string as passed. Best effort: relative to the process's cwd (exact
    // for AT_FDCWD, the common case); the path stays flagged unresolved.
    std::string abs = identity::ResolveProcessPath(static_cast<pid_t>(info.tgid), ev.file().path(),
                                                   /*follow_symlinks=*/false);
    if (!abs.empty()) ev.mutable_file()->set_path(std::move(abs));
  }
  if (info.kind == EventKind::kConnect && ev.network().family() == "unix" && SettleUnix(ev, info)) {
    return;
  }
  intent::Verdict v = intent::Evaluate(*task.compiled, info.kind, ev, ctx);
  if (v.kind == intent::Verdict::kViolation && info.kind == EventKind::kOpen &&
      ev.file().result() < 0 && absl::EndsWith(v.rule->id, ".default")) {
    // A failed open accessed nothing: the allow-list default does not apply (a shell probing PATH,
    // git probing optional files). An explicit deny rule still does: the attempt itself is the
    // finding.
    v.kind = intent::Verdict::kAllow;
    v.rule = nullptr;
  }
  if (v.kind == intent::Verdict::kViolation && info.kind == EventKind::kConnect &&
      ev.network().family() == "unix" && absl::EndsWith(v.rule->id, ".default") &&
      ev.network().result() != 0 && ev.network().peer_path().empty() &&
      !ev.network().path().empty() && ev.network().path()[0] == '/' &&
      access(ev.network().path().c_str(), F_OK) != 0 && errno == ENOENT) {
    // The same for a unix socket that does not exist (glibc probing nscd, say): it reached
    // nothing. The kernel refused it before the lookup (EPERM, not ENOENT); no verdict, no finding.
    if (info.kernel_denied) {
      ev.set_outcome("prevented");
      ev.set_enforcement(info.lsm ? "lsm" : "cgroup-bpf");
    }
    return;
  }
  if (info.kernel_denied && v.kind != intent::Verdict::kViolation &&
      (info.kind == EventKind::kOpen || info.kind == EventKind::kLink) &&
      task.compiled->renamed_rule()) {
    // The kernel denied a name no pattern matches: one a denied file was given by a rename or a
    // link in this task (bpf/writ_link.bpf.h).
    v = intent::Verdict{intent::Verdict::kViolation, task.compiled->renamed_rule()};
  }
  Bump(counters_.verdicts[v.kind & 3]);
  counters_.latency.Record((NowBootNs() - static_cast<int64_t>(info.ktime_ns)) / 1000);
  if (v.kind == intent::Verdict::kNotJudged || v.kind == intent::Verdict::kAllow) {
    if (v.kind == intent::Verdict::kAllow) {
      ev.set_verdict(intent::VerdictName(v.kind));
      ev.set_outcome("allowed");
    }
    // The kernel stopped an exec it could not decide (glob or argv rule): let it run. Not judged by
    // the intent at all: a kernel stop must never be left hanging either.
    if (info.kernel_stopped) (void)d_.actions.Signal(info.tgid, info.start_time_ns, SIGCONT);
    return;
  }
  ev.set_verdict(intent::VerdictName(v.kind));
  v1::Finding* f = ev.mutable_finding();
  f->set_rule(v.rule->id);
  f->set_category(intent::CategoryName(v.rule->category));
  f->set_reason(absl::StrCat(v.rule->reason, ": ", FindingTarget(info.kind, ev, v)));
  for (const auto& fw : v.rule->frameworks) f->add_frameworks(fw);
  for (const auto& r : v.rule->responses) f->add_responses(r);
  f->set_severity(v.rule->severity);
  Bump(counters_.violations);
  Enforce(task, ev, info, v);
}

// While exactly one MCP tool call is in flight, its tool's `tools.during` rules judge the event too
// (after the intent allowed it): a violation of them is one like any other, judged in userspace.
void Pipeline::JudgeDuringCall(Task& task, v1::Event& ev, const decode::RecordInfo& info,
                               const intent::CompiledIntent& during) {
  if (info.kind != EventKind::kExec && info.kind != EventKind::kOpen &&
      info.kind != EventKind::kConnect) {
    return;
  }
  intent::EvalContext ctx;
  ctx.now = absl::FromUnixNanos(static_cast<int64_t>(info.ktime_ns) + boot_to_unix_ns_);
  ctx.live_processes = task.live_processes.load();
  intent::Verdict v = intent::Evaluate(during, info.kind, ev, ctx);
  if (v.kind != intent::Verdict::kViolation) return;
  if (info.kind == EventKind::kOpen && ev.file().result() < 0 &&
      absl::EndsWith(v.rule->id, ".default")) {
    return;  // a failed open accessed nothing (as in Judge)
  }
  ev.set_verdict(intent::VerdictName(v.kind));
  v1::Finding* f = ev.mutable_finding();
  f->set_rule(v.rule->id);
  f->set_category(intent::CategoryName(v.rule->category));
  f->set_reason(absl::StrCat(v.rule->reason, " while tool ", ev.tool().name(), " (call ",
                             ev.tool().call_id(),
                             ") was in flight: ", FindingTarget(info.kind, ev, v)));
  for (const auto& fw : v.rule->frameworks) f->add_frameworks(fw);
  for (const auto& r : v.rule->responses) f->add_responses(r);
  f->set_severity(v.rule->severity);
  Bump(counters_.violations);
  Enforce(task, ev, info, v);
}

void Pipeline::Enforce(Task& task, v1::Event& ev, const decode::RecordInfo& info,
                       const intent::Verdict& v) {
  if (task.mode != TaskMode::kEnforce) {
    ev.set_outcome("would_deny");
    return;
  }
  if (v.kind == intent::Verdict::kNeedsApproval) {
    RequestApproval(task, ev, info, v);
    return;
  }
  // A violation. Prevention where the kernel did it; otherwise the acting process dies now.
  if (info.kernel_denied && info.lsm) {
    ev.set_outcome("prevented");  // refused by BPF-LSM before the exec, open or connect happened
    ev.set_enforcement("lsm");
  } else if (info.kernel_denied) {
    switch (info.kind) {
      case EventKind::kConnect:
        if (ev.network().result() == -EPERM) {
          ev.set_outcome("prevented");
          ev.set_enforcement("cgroup-bpf");
        } else {
          // A unix connect where cgroup/connect_unix does not load: killed at its syscall exit.
          ev.set_outcome("killed_after");
          ev.set_enforcement("kernel-signal");
        }
        break;
      case EventKind::kExec:
        ev.set_outcome("killed");  // SIGKILL before the new image's first instruction
        ev.set_enforcement("kernel-signal");
        break;
      default:
        ev.set_outcome("killed_after");  // the open happened; the process died at syscall exit
        ev.set_enforcement("kernel-signal");
        break;
    }
  } else {
    // With a kill response the whole task dies now, before the acting process: killed alone first,
    // its parent (the agent's shell) would be woken by its death and could run its next command
    // before the deferred task kill lands. The response's action event still follows the
    // violation's.
    if (Has(v.rule->responses, "kill")) (void)d_.actions.KillNow(task);
    absl::Status st = d_.actions.Signal(info.tgid, info.start_time_ns, SIGKILL);
    // An exec stopped by the kernel never ran an instruction: killing it now still prevents it.
    ev.set_outcome(info.kernel_stopped ? "killed" : "killed_after");
    ev.set_enforcement(info.kernel_stopped ? "kernel-signal" : "userspace");
    if (!st.ok() && !absl::IsNotFound(st)) {
      Logger("writd")->error("task {}: kill pid {}: {}", task.id, info.tgid,
                             std::string(st.message()));
    }
  }
  task.violated = true;
  // A revocation takes effect now, in memory, like the kill above: its durable record and events
  // follow in RunResponses, after the violating event's own (journal-fsynced) emission.
  if (Has(v.rule->responses, "revoke")) d_.actions.MarkRevoked(task);
  deferred_responses_ = &v.rule->responses;
}

// Step-up approval: the actor is held (an exec was stopped by the kernel, a connect got EPERM,
// anything else is stopped now), the task frozen, and an approval_request emitted, bound to this
// exact action. An action granted for the task before (`--scope task`) simply runs.
void Pipeline::RequestApproval(Task& task, v1::Event& ev, const decode::RecordInfo& info,
                               const intent::Verdict& v) {
  // The approver, the approvals store and the hash see the action without its secrets (the marks
  // are keyed per secret, so the hash still binds the approval to this exact action).
  d_.redactor.RedactEvent(&ev);
  std::string hash = ActionHash(ev);
  if (d_.approvals.IsGranted(task.id, hash)) {
    ev.set_verdict("allow");
    ev.clear_finding();
    ev.set_outcome("allowed");
    if (info.kernel_stopped) (void)d_.actions.Signal(info.tgid, info.start_time_ns, SIGCONT);
    return;
  }
  if (info.kind == EventKind::kExec && !info.kernel_stopped) {
    (void)d_.actions.Signal(info.tgid, info.start_time_ns, SIGSTOP);
  }
  ev.set_outcome(info.kind == EventKind::kConnect && info.kernel_denied ? "prevented" : "stopped");
  ev.set_enforcement(info.kernel_stopped  ? "kernel-signal"
                     : info.kernel_denied ? "cgroup-bpf"
                                          : "userspace");
  d_.actions.Freeze(task, true, &ev, "approval requested");
  ApprovalRequest req;
  req.task_id = task.id;
  req.kind = ev.kind();
  req.action = ActionText(ev);
  req.action_hash = hash;
  req.created = absl::Now();
  req.expires = req.created + task.compiled->approval_timeout(v.rule);
  req.pid = info.tgid;
  req.start_ns = info.start_time_ns;
  req.rule = v.rule->id;
  req.responses = v.rule->responses;
  req.cause = ev;
  std::string id = d_.approvals.Add(req);
  v1::Event ar = d_.output.NewEvent("approval_request");
  FillAgent(task, &ar);
  *ar.mutable_process() = ev.process();
  if (ev.has_file()) *ar.mutable_file() = ev.file();
  if (ev.has_network()) *ar.mutable_network() = ev.network();
  v1::Approval* a = ar.mutable_approval();
  a->set_id(id);
  a->set_action(req.action);
  a->set_action_hash(hash);
  a->set_expires(Rfc3339(req.expires));
  *ar.mutable_finding() = ev.finding();
  d_.output.Emit(ar);
}

void Pipeline::EmitSecretInArgv(const Task& task, const v1::Event& exec,
                                const creds::RedactionReport& r) {
  v1::Event e = d_.output.NewEvent("secret");
  FillAgent(task, &e);
  *e.mutable_process() = exec.process();  // redacted already
  creds::FillSecretInArgvFinding(r, e.mutable_finding());
  d_.output.Emit(e, /*batch=*/true);
}

// Every self-protection record is a violation tagged OWASP-ASI10 (rogue agent), in every mode; in
// enforce mode the task's on_violation responses run (kill when the task has no intent).
void Pipeline::JudgeSelf(Task& task, v1::Event& ev, const decode::RecordInfo& info) {
  const v1::Syscall& sc = ev.syscall();
  ev.set_verdict("violation");
  if (info.seccomp) {
    ev.set_outcome("prevented");  // refused before it ran; the caller got EPERM
    ev.set_enforcement("seccomp");
  } else if (info.lsm) {
    ev.set_outcome("prevented");  // refused by a BPF-LSM hook: it never reached its target
    ev.set_enforcement("lsm");
  } else if (info.kernel_denied) {
    ev.set_outcome("killed_after");  // it ran; the caller was SIGKILLed at syscall entry
    ev.set_enforcement("kernel-signal");
  } else {
    ev.set_outcome("would_deny");  // no filter and not in enforce mode
  }
  v1::Finding* f = ev.mutable_finding();
  f->set_rule(absl::StrCat("writ/self.", sc.name()));
  f->set_category("self");
  f->set_reason(SelfReason(sc));
  f->add_frameworks("OWASP-ASI10");
  f->add_frameworks("MAESTRO-L4");
  self_responses_ = {"alert", "kill"};
  if (task.compiled && !task.compiled->responses().empty())
    self_responses_ = task.compiled->responses();
  for (const auto& r : self_responses_) f->add_responses(r);
  f->set_severity("critical");
  Bump(counters_.violations);
  Bump(counters_.verdicts[intent::Verdict::kViolation & 3]);
  if (task.mode == TaskMode::kEnforce) {
    task.violated = true;
    // As Enforce: a revocation takes effect now, in memory; RunResponses records it after the
    // emission.
    if (Has(self_responses_, "revoke")) d_.actions.MarkRevoked(task);
    deferred_responses_ = &self_responses_;
  }
}

}  // namespace writ::daemon
