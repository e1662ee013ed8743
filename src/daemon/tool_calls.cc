#include "daemon/tool_calls.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "creds/redact.h"
#include "daemon/events.h"
#include "intent/intent.h"
#include "intent/tools.h"
#include "nlohmann/json.hpp"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;

namespace {

constexpr size_t kMaxViolationIds = 16;

v1::ToolVerdict Verdict(const char* v, const std::string& reason = "",
                        const std::string& rule = "") {
  v1::ToolVerdict out;
  out.set_verdict(v);
  out.set_reason(reason);
  out.set_rule(rule);
  return out;
}

}  // namespace

v1::ToolVerdict ToolCalls::Report(Task& task, const v1::ToolCallReport& r) {
  if (r.phase() == "start") return Start(task, r);
  if (r.phase() == "end") return End(task, r);
  if (r.phase() == "poll") return Poll(task, r);
  if (r.phase() == "list") return List(task, r);
  return Verdict("deny", absl::StrCat("unknown phase \"", r.phase(), "\""));
}

ToolCalls::Call ToolCalls::NewCall(const Task& task, const v1::ToolCallReport& r) const {
  Call c;
  c.task_id = task.id;
  {
    v1::Event e;
    FillAgent(task, &e);
    c.agent = e.agent();
  }
  c.call_id = r.call_id();
  c.name = r.name();
  // Redacted whole, then cut: a cut first could leave half a secret no rule recognises.
  std::string args = r.arguments();
  (d_.redactor ? *d_.redactor : creds::DefaultRedactor()).RedactText(&args);
  c.arguments_truncated = r.arguments_truncated() || args.size() > kToolArgumentsCap;
  if (args.size() > kToolArgumentsCap) args.resize(kToolArgumentsCap);
  c.arguments = std::move(args);
  c.arguments_bytes = r.arguments_bytes() ? r.arguments_bytes() : r.arguments().size();
  c.arguments_sha256 = r.arguments_sha256();
  c.start_ktime = NowBootNs();
  return c;
}

v1::ToolVerdict ToolCalls::Start(Task& task, const v1::ToolCallReport& r) {
  counters_.calls++;
  Call c = NewCall(task, r);
  // The digest approvals bind to is the gateway's; when the arguments came whole, it must be
  // theirs.
  if (!r.arguments_truncated() && Sha256Hex(r.arguments()) != r.arguments_sha256()) {
    c.status = "denied";
    c.error = "arguments_sha256 does not match the arguments";
    counters_.denied++;
    EmitCall(&task, c);
    return Verdict("deny", c.error);
  }
  intent::ToolDecision d;
  const intent::ToolPolicy* policy = task.compiled ? task.compiled->tools() : nullptr;
  if (policy && task.mode != identity::TaskMode::kRecord) {
    nlohmann::json args;
    bool parsed = false;
    if (!r.arguments_truncated()) {
      args = nlohmann::json::parse(r.arguments(), nullptr, /*allow_exceptions=*/false);
      parsed = !args.is_discarded();
    }
    d = policy->Judge(r.name(), parsed ? &args : nullptr);
    c.during = policy->During(r.name());
  }
  const bool enforce = task.mode == identity::TaskMode::kEnforce;
  if (d.kind == intent::ToolDecision::kDeny) {
    c.rule = d.rule;
    c.error = d.reason;
    if (enforce) {
      c.status = "denied";
      counters_.denied++;
      EmitCall(&task, c);
      return Verdict("deny", d.reason, d.rule);
    }
    // monitor: relayed, and its tool_call event says it would have been denied (status stays the
    // answer's; rule and error say why).
  }
  if (d.kind == intent::ToolDecision::kNeedsApproval && enforce) {
    v1::Event cause = CallEvent(&task, c, "tool_call");
    const std::string hash = ActionHash(cause);
    if (!d_.approvals.IsGranted(task.id, hash)) {
      counters_.held++;
      c.rule = d.rule;
      ApprovalRequest req;
      req.task_id = task.id;
      req.kind = "tool_call";
      req.action = ActionText(cause);
      req.action_hash = hash;
      req.created = absl::Now();
      req.expires = req.created + d.timeout;
      req.rule = d.rule;
      req.cause = cause;
      const std::string id = d_.approvals.Add(req);
      v1::Event ar = d_.output.NewEvent("approval_request");
      FillAgent(task, &ar);
      *ar.mutable_tool() = cause.tool();
      ar.mutable_tool()->set_status("needs_approval");
      ar.mutable_tool()->set_rule(d.rule);
      v1::Approval* a = ar.mutable_approval();
      a->set_id(id);
      a->set_action(req.action);
      a->set_action_hash(hash);
      a->set_expires(Rfc3339(req.expires));
      v1::Finding* f = ar.mutable_finding();
      f->set_rule(d.rule);
      f->set_category("tool");
      f->set_reason(d.reason);
      f->set_severity(task.compiled->severity());
      for (const auto& fw : task.compiled->frameworks()) f->add_frameworks(fw);
      ar.set_verdict("needs_approval");
      ar.set_outcome("stopped");
      ar.set_enforcement("gateway");
      {
        absl::MutexLock lock(&mu_);
        held_[id] = Held{std::move(c), std::nullopt, ""};
      }
      d_.output.Emit(ar);
      v1::ToolVerdict v = Verdict("needs_approval", d.reason, d.rule);
      v.set_approval_id(id);
      return v;
    }
  }
  if (!enforce && d.kind != intent::ToolDecision::kAllow) {
    c.rule = d.rule;
    c.error = absl::StrCat("would be ", intent::ToolDecisionName(d.kind), ": ", d.reason);
  }
  Register(task, std::move(c));
  return Verdict("allow");
}

void ToolCalls::Register(Task& task, Call c) {
  task.tool_calls.fetch_add(1);  // before the start time: Annotate must not skip the call's events
  c.start_ktime = NowBootNs();   // from now on the server may act on it
  absl::MutexLock lock(&mu_);
  calls_[c.task_id].push_back(std::move(c));
  registered_++;
}

v1::ToolVerdict ToolCalls::End(Task& task, const v1::ToolCallReport& r) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(task.id);
  if (it != calls_.end()) {
    for (Call& c : it->second) {
      if (c.call_id != r.call_id() || c.end_ktime != 0) continue;
      c.end_ktime = std::max<int64_t>(NowBootNs(), c.start_ktime);
      c.status = r.status().empty() ? "ok" : r.status();
      if (!r.error().empty()) c.error = r.error();
      c.duration_us = r.duration_us();
      return Verdict("allow");
    }
  }
  return Verdict("deny", absl::StrCat("no call ", r.call_id(), " in flight"));
}

v1::ToolVerdict ToolCalls::Poll(Task& task, const v1::ToolCallReport& r) {
  std::optional<Held> decided;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(r.approval_id());
    if (it == held_.end() || it->second.call.task_id != task.id) {
      return Verdict("deny", absl::StrCat("no held call with approval ", r.approval_id()));
    }
    if (!it->second.approved) return Verdict("pending");
    decided = std::move(it->second);
    held_.erase(it);
  }
  if (*decided->approved) {
    decided->call.rule.clear();  // held, then approved: an allowed call
    Register(task, std::move(decided->call));
    return Verdict("allow", absl::StrCat("approved by ", decided->by));
  }
  Call& c = decided->call;
  c.status = "denied";
  c.error = absl::StrCat("approval ", r.approval_id(), " denied by ", decided->by);
  counters_.denied++;
  EmitCall(&task, c);
  return Verdict("deny", c.error, c.rule);
}

void ToolCalls::Decided(const ApprovalRequest& r, bool approved, const std::string& by) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(r.id);
  if (it == held_.end()) return;
  it->second.approved = approved;
  it->second.by = by;
}

v1::ToolVerdict ToolCalls::List(Task& task, const v1::ToolCallReport& r) {
  const intent::ToolPolicy* policy = task.compiled ? task.compiled->tools() : nullptr;
  const bool filter = policy && task.mode == identity::TaskMode::kEnforce;
  v1::ToolVerdict v = Verdict("allow");
  v1::Event ev = d_.output.NewEvent("tool_list");
  FillAgent(task, &ev);
  v1::Tool* t = ev.mutable_tool();
  for (const std::string& name : r.tools()) {
    t->add_offered(name);
    if (policy && !policy->Shown(name)) {
      t->add_hidden(name);
      if (filter) continue;
    }
    v.add_tools(name);
  }
  t->set_status(t->hidden_size() == 0 ? "ok" : filter ? "filtered" : "would_filter");
  d_.output.Emit(ev);
  return v;
}

int ToolCalls::Annotate(const Task& task, v1::Event* ev,
                        std::shared_ptr<const intent::CompiledIntent>* during) {
  // Most tasks have no gateway: their events take no lock here. A call is counted on its task
  // before its start time is taken, so an event from inside the call never reads 0.
  if (task.tool_calls.load() == 0) return 0;
  const int64_t k = static_cast<int64_t>(ev->ktime_ns());
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(task.id);
  if (it == calls_.end()) return 0;
  const Call* one = nullptr;
  int n = 0;
  for (const Call& c : it->second) {
    if (k < c.start_ktime || (c.end_ktime != 0 && k > c.end_ktime)) continue;
    if (n++ == 0) one = &c;
  }
  if (n == 0) return 0;
  v1::Tool* t = ev->mutable_tool();
  t->set_in_flight(n);
  if (n == 1) {
    t->set_name(one->name);
    t->set_call_id(one->call_id);
    if (during) *during = one->during;
    return 1;
  }
  for (const Call& c : it->second) {
    if (k < c.start_ktime || (c.end_ktime != 0 && k > c.end_ktime)) continue;
    t->add_call_ids(absl::StrCat(c.name, " ", c.call_id));
  }
  return n;
}

void ToolCalls::NoteViolation(const Task& task, const v1::Event& ev) {
  if (ev.tool().in_flight() != 1) return;
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(task.id);
  if (it == calls_.end()) return;
  for (Call& c : it->second) {
    if (c.call_id != ev.tool().call_id()) continue;
    const int64_t k = static_cast<int64_t>(ev.ktime_ns());
    if (k < c.start_ktime || (c.end_ktime != 0 && k > c.end_ktime)) continue;
    c.violations++;
    if (c.violation_ids.size() < kMaxViolationIds && !ev.id().empty()) {
      c.violation_ids.push_back(ev.id());
    }
    return;
  }
}

void ToolCalls::Housekeeping() {
  ++tick_;
  std::vector<Call> done;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = calls_.begin(); it != calls_.end();) {
      std::deque<Call>& q = it->second;
      const std::shared_ptr<Task> task = d_.registry.Find(it->first);
      const bool task_gone = !task;
      for (auto c = q.begin(); c != q.end();) {
        if (c->end_ktime != 0 && c->answered_tick < 0) c->answered_tick = tick_;
        // Answered before the previous tick: a full drain ran since, so every record of the call is
        // counted. A call of an ended task is over whatever its launcher says.
        if ((c->answered_tick >= 0 && c->answered_tick < tick_) || task_gone) {
          if (c->end_ktime == 0) {
            c->status = "server_exited";
            c->end_ktime = NowBootNs();
          }
          done.push_back(std::move(*c));
          c = q.erase(c);
          registered_--;
          if (task) task->tool_calls.fetch_sub(1);
        } else {
          ++c;
        }
      }
      if (q.empty()) {
        calls_.erase(it++);
      } else {
        ++it;
      }
    }
    for (auto it = held_.begin(); it != held_.end();) {
      if (!d_.registry.Find(it->second.call.task_id)) {
        held_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (const Call& c : done) {
    std::shared_ptr<Task> t = d_.registry.Find(c.task_id);
    EmitCall(t.get(), c);
  }
}

v1::Event ToolCalls::CallEvent(const Task* task, const Call& c, const char* kind) {
  v1::Event ev = d_.output.NewEvent(kind);
  if (task) {
    FillAgent(*task, &ev);
  } else if (!c.agent.task_id().empty()) {
    *ev.mutable_agent() = c.agent;
  }
  if (c.start_ktime) ev.set_ktime_ns(static_cast<uint64_t>(c.start_ktime));
  v1::Tool* t = ev.mutable_tool();
  t->set_name(c.name);
  t->set_call_id(c.call_id);
  t->set_arguments(c.arguments);
  t->set_arguments_truncated(c.arguments_truncated);
  t->set_arguments_bytes(c.arguments_bytes);
  t->set_arguments_sha256(c.arguments_sha256);
  t->set_status(c.status);
  t->set_error(c.error);
  t->set_rule(c.rule);
  t->set_duration_us(c.duration_us);
  t->set_violations(c.violations);
  for (const auto& id : c.violation_ids) t->add_violation_ids(id);
  return ev;
}

void ToolCalls::EmitCall(const Task* task, const Call& c) {
  v1::Event ev = CallEvent(task, c, "tool_call");
  if (c.status == "denied") {
    ev.set_verdict("violation");
    ev.set_outcome("prevented");
    ev.set_enforcement("gateway");
    v1::Finding* f = ev.mutable_finding();
    f->set_rule(c.rule);
    f->set_category("tool");
    f->set_reason(c.error);
    if (task && task->compiled) {
      f->set_severity(task->compiled->severity());
      for (const auto& fw : task->compiled->frameworks()) f->add_frameworks(fw);
    }
  } else if (!c.rule.empty()) {
    ev.set_verdict("violation");
    ev.set_outcome("would_deny");
    ev.mutable_finding()->set_rule(c.rule);
    ev.mutable_finding()->set_category("tool");
    ev.mutable_finding()->set_reason(c.error);
  } else {
    ev.set_verdict("allow");
    ev.set_outcome("allowed");
  }
  d_.output.Emit(ev);
}

}  // namespace writ::daemon
