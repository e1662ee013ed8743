// TaskLifecycle: the state store side. Every task is written through to SQLite (state/store.h) when
// it is installed, with the intent as it was when the task started; a restarted writd takes back
// those whose cgroup still exists and ends the others.
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "actions/signal.h"
#include "bpf/task_tables.h"
#include "daemon/dns_egress.h"
#include "daemon/events.h"
#include "daemon/task_lifecycle.h"
#include "intent/intent.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskState;

namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd");
  return l;
}

std::shared_ptr<Task> TaskFromRecord(const v1::TaskRecord& r) {
  auto t = std::make_shared<Task>();
  t->id = r.id();
  t->spiffe_id = r.spiffe_id();
  t->principal = r.principal();
  t->intent = r.intent();
  t->parent_task = r.parent_task();
  t->chain.assign(r.chain().begin(), r.chain().end());
  for (const auto& [k, v] : r.params()) t->params[k] = v;
  t->command.assign(r.command().begin(), r.command().end());
  // A record from a writd that wrote a mode this one does not know is judged as strictly as it can
  // be.
  auto mode = identity::ParseTaskMode(r.mode());
  t->mode = mode.ok() ? *mode : identity::TaskMode::kEnforce;
  t->cgroup_path = r.cgroup_path();
  t->cgroup_id = r.cgroup_id();
  t->slot = r.slot();
  t->owner_uid = r.owner_uid();
  t->run_uid = r.run_uid();
  t->root = r.root();
  t->start = absl::FromUnixNanos(r.start_unix_ns());
  if (r.deadline_unix_ns()) t->deadline = absl::FromUnixNanos(r.deadline_unix_ns());
  return t;
}

}  // namespace

void TaskLifecycle::Save(const Task& t, const v1::Intent* spec) {
  if (!d_.store) return;
  v1::TaskRecord r;
  r.set_id(t.id);
  r.set_spiffe_id(t.spiffe_id);
  r.set_principal(t.principal);
  r.set_intent(t.intent);
  r.set_parent_task(t.parent_task);
  for (const auto& c : t.chain) r.add_chain(c);
  for (const auto& [k, v] : t.params) (*r.mutable_params())[k] = v;
  for (const auto& c : t.command) r.add_command(c);
  r.set_mode(identity::TaskModeName(t.mode));
  r.set_cgroup_path(t.cgroup_path);
  r.set_cgroup_id(t.cgroup_id);
  r.set_slot(t.slot);
  r.set_owner_uid(t.owner_uid);
  r.set_run_uid(t.run_uid);
  r.set_root(t.root);
  r.set_start_unix_ns(absl::ToUnixNanos(t.start));
  if (t.deadline != absl::InfiniteFuture()) r.set_deadline_unix_ns(absl::ToUnixNanos(t.deadline));
  if (spec) *r.mutable_intent_spec() = *spec;
  if (absl::Status st = d_.store->PutTask(r); !st.ok()) {
    Log()->error("task {}: persist: {}", t.id, std::string(st.message()));
  }
}

void TaskLifecycle::Abandon(Task& t, bool alive) {
  (void)d_.loader.RemoveTask(t.cgroup_id);
  d_.loader.ClearTables(t.slot);
  if (creds_.revoke) creds_.revoke(t, "task ended while writd was down").IgnoreError();  // logged
  v1::Event e = d_.output.NewEvent("task_end");
  FillAgent(t, &e);
  e.mutable_task()->set_reason(alive ? "aborted" : "exited");
  e.mutable_task()->set_cgroup(t.cgroup_path);
  d_.output.Emit(e);
  if (alive) (void)d_.cgroups.Kill(t.id);
  (void)d_.store->DeleteTask(t.id);
  Log()->warn("task {}: not restored ({})", t.id, alive ? "could not re-arm" : "ended while down");
}

// Takes back the tasks a previous writd left: a task whose cgroup is gone ended while writd was
// down (task_end, credentials revoked); a live one is re-armed (maps and tables, idempotent when
// they were pinned) with the intent it started with, and its processes re-read from its cgroup.
void TaskLifecycle::Restore() {
  if (!d_.store) return;
  auto recs = d_.store->Tasks();
  if (!recs.ok()) {
    Log()->error("state store: {}", std::string(recs.status().message()));
    return;
  }
  if (d_.loader.adopted()) Log()->info("re-adopted pinned BPF maps and programs");
  for (const v1::TaskRecord& r : *recs) {
    std::shared_ptr<Task> t = TaskFromRecord(r);
    auto id_now = identity::CgroupId(t->cgroup_path);
    bool alive = id_now.ok() && *id_now == t->cgroup_id;
    if (alive && r.has_intent_spec()) {
      absl::flat_hash_map<std::string, std::string> params(t->params.begin(), t->params.end());
      auto compiled = intent::Compile(r.intent_spec(), params);
      if (compiled.ok()) {
        t->compiled = *compiled;
      } else {
        Log()->error("task {}: intent no longer compiles ({}); its processes are killed", t->id,
                     std::string(compiled.status().message()));
        (void)d_.cgroups.Kill(t->id);
      }
    }
    if (!alive || !d_.registry.ClaimSlot(t->slot) || !bpf::ArmTask(d_.loader, *t).ok() ||
        !d_.registry.Add(t).ok()) {
      Abandon(*t, alive);
      continue;
    }
    // Its DNS pins from before the restart stay in the kernel until their expiry; new answers
    // come from this writd's stub.
    if (dns_) dns_->AddTask(*t, /*restored=*/true);
    // Its processes, from the cgroup itself (the ring buffer only has what happened since).
    if (auto procs = ReadFile(t->cgroup_path + "/cgroup.procs"); procs.ok()) {
      for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
        uint32_t pid = 0;
        if (!absl::SimpleAtoi(line, &pid)) continue;
        auto start = actions::ProcessStartNs(pid);
        if (!start.ok()) continue;
        bool created = false;
        if (identity::ProcessInfo* pi = d_.procs.Upsert(pid, *start, &created); pi && created) {
          pi->cgroup_id = t->cgroup_id;
          char exe[4096];
          ssize_t n = readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), exe, sizeof(exe) - 1);
          if (n > 0) pi->exe.assign(exe, n);
          t->live_processes++;
        }
      }
    }
    t->state = TaskState::kRunning;
    v1::Event e = d_.output.NewEvent("task_start");
    FillAgent(*t, &e);
    e.mutable_task()->set_cgroup(t->cgroup_path);
    e.mutable_task()->set_reason("restored");
    if (t->deadline != absl::InfiniteFuture()) e.mutable_task()->set_deadline(Rfc3339(t->deadline));
    d_.output.Emit(e);
    Log()->info("task {} restored ({} processes)", t->id, t->live_processes.load());
  }
  d_.approvals.Restore([this](const std::string& id) { return d_.registry.Find(id) != nullptr; });
}

}  // namespace writ::daemon
