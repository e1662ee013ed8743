#include "daemon/events.h"

#include "absl/time/time.h"
#include "util/util.h"

namespace writ::daemon {

void FillAgent(const identity::Task& task, v1::Event* ev) {
  v1::Agent* a = ev->mutable_agent();
  a->set_spiffe_id(task.spiffe_id);
  a->set_task_id(task.id);
  if (!task.principal.empty()) a->set_principal(task.principal);
  if (!task.intent.empty()) a->set_intent(task.intent);
  if (!task.charter.empty()) {
    a->set_charter(task.charter);
    a->set_charter_sha256(task.charter_sha256);
  }
  if (!task.parent_task.empty()) a->set_parent_task(task.parent_task);
  if (task.chain.size() > 1) {
    a->mutable_chain()->Clear();
    for (const auto& c : task.chain) a->add_chain(c);
  }
}

v1::Event TaskStartEvent(EventOutput& out, const identity::Task& task) {
  v1::Event e = out.NewEvent("task_start");
  FillAgent(task, &e);
  v1::TaskInfo* ti = e.mutable_task();
  ti->set_cgroup(task.cgroup_path);
  if (task.deadline != absl::InfiniteFuture()) ti->set_deadline(Rfc3339(task.deadline));
  for (const auto& [k, v] : task.params) (*ti->mutable_params())[k] = v;
  for (const auto& c : task.command) ti->add_command(c);
  ti->set_run_uid(task.run_uid);
  if (std::optional<UserEntry> u = LookupUser(task.run_uid)) ti->set_run_user(u->name);
  ti->set_root(task.root);
  return e;
}

v1::Event ActionEvent(EventOutput& out, const identity::Task& task, const std::string& type,
                      const std::string& result, uint64_t cause_ktime_ns, const std::string& target,
                      const std::string& reason) {
  v1::Event e = out.NewEvent("action");
  FillAgent(task, &e);
  v1::Action* a = e.mutable_action();
  a->set_type(type);
  a->set_result(result);
  a->set_target(target);
  a->set_reason(reason);
  if (cause_ktime_ns) {
    int64_t now = NowBootNs();
    a->set_latency_us(now > static_cast<int64_t>(cause_ktime_ns)
                          ? (now - static_cast<int64_t>(cause_ktime_ns)) / 1000
                          : 0);
  }
  return e;
}

}  // namespace writ::daemon
