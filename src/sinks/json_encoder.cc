#include "sinks/json_encoder.h"

#include <algorithm>
#include <array>

#include "sinks/json_writer.h"

namespace writ::sinks {
namespace {

using MapEntry = google::protobuf::MapPair<std::string, std::string>;

// Params are a protobuf map (unordered); sort them so equal events encode to equal bytes. A fixed
// array keeps this allocation-free; past kMaxSorted entries they are written in map order.
void WriteParams(const google::protobuf::Map<std::string, std::string>& params, JsonWriter& w) {
  if (params.empty()) return;
  constexpr size_t kMaxSorted = 64;
  w.Key("params");
  w.BeginObject();
  if (params.size() <= kMaxSorted) {
    std::array<const MapEntry*, kMaxSorted> sorted;
    size_t n = 0;
    for (const auto& kv : params) sorted[n++] = &kv;
    std::sort(sorted.begin(), sorted.begin() + n,
              [](const MapEntry* a, const MapEntry* b) { return a->first < b->first; });
    for (size_t i = 0; i < n; ++i) {
      w.KeyEscaped(sorted[i]->first);
      w.String(sorted[i]->second);
    }
  } else {
    for (const auto& kv : params) {
      w.KeyEscaped(kv.first);
      w.String(kv.second);
    }
  }
  w.EndObject();
}

// uid and gid are always written (0 is root: a SIEM rule on uid == 0 must match), and so is
// exit_code on exit events (0 is a clean exit).
void WriteProcess(const writ::v1::Process& p, bool is_exit, JsonWriter& w) {
  w.Key("process");
  w.BeginObject();
  w.NumberField("pid", static_cast<uint64_t>(p.pid()));
  w.UintField("tid", p.tid());
  w.UintField("ppid", p.ppid());
  w.NumberField("uid", static_cast<uint64_t>(p.uid()));
  w.NumberField("gid", static_cast<uint64_t>(p.gid()));
  w.StrField("exe", p.exe());
  w.StrListField("args", p.args());
  w.BoolField("args_truncated", p.args_truncated());
  w.StrField("comm", p.comm());
  w.UintField("start_time_ns", p.start_time_ns());
  w.StrField("filename", p.filename());
  w.StrField("script", p.script());
  w.StrField("loaded", p.loaded());
  w.BoolField("unresolved", p.unresolved());
  if (is_exit) {
    w.NumberField("exit_code", static_cast<int64_t>(p.exit_code()));
  } else {
    w.IntField("exit_code", p.exit_code());
  }
  w.UintField("exit_signal", p.exit_signal());
  w.EndObject();
}

void WriteFile(const writ::v1::File& f, JsonWriter& w) {
  w.Key("file");
  w.BeginObject();
  w.StrField("path", f.path());
  w.StrListField("flags", f.flags());
  w.NumberField("result", static_cast<int64_t>(f.result()));
  w.BoolField("unresolved", f.unresolved());
  w.BoolField("truncated", f.truncated());
  w.UintField("raw_flags", f.raw_flags());
  w.StrField("syscall", f.syscall());
  w.UintField("inode", f.inode());
  w.UintField("dev", f.dev());
  w.StrField("new_path", f.new_path());
  w.EndObject();
}

void WriteNetwork(const writ::v1::Network& n, JsonWriter& w) {
  w.Key("network");
  w.BeginObject();
  w.StrField("family", n.family());
  w.StrField("dst_ip", n.dst_ip());
  w.NumberField("dst_port", static_cast<uint64_t>(n.dst_port()));
  w.NumberField("result", static_cast<int64_t>(n.result()));
  w.StrField("hook", n.hook());
  w.StrField("path", n.path());
  w.StrField("peer_path", n.peer_path());
  w.BoolField("send", n.send());
  w.UintField("suppressed", n.suppressed());
  w.StrField("host", n.host());
  w.EndObject();
}

void WriteSyscall(const writ::v1::Syscall& s, JsonWriter& w) {
  w.Key("syscall");
  w.BeginObject();
  w.StrField("name", s.name());
  w.Key("result");
  w.Int(s.result());
  w.StrField("target", s.target());
  w.UintField("target_pid", s.target_pid());
  w.Key("args");
  w.BeginArray();
  for (int64_t a : s.args()) w.Int(a);
  w.EndArray();
  w.EndObject();
}

void WriteFinding(const writ::v1::Finding& f, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("finding");
  w.BeginObject();
  w.StrField("rule", f.rule());
  w.StrField("category", f.category());
  w.StrField("reason", f.reason());
  w.StrListField("frameworks", f.frameworks());
  w.StrListField("responses", f.responses());
  w.StrField("severity", f.severity());
  w.EndObjectOrRollback(mark);
}

void WriteTask(const writ::v1::TaskInfo& t, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("task");
  w.BeginObject();
  w.StrField("reason", t.reason());
  w.StrField("deadline", t.deadline());
  w.StrField("cgroup", t.cgroup());
  WriteParams(t.params(), w);
  w.BoolField("adopted", t.adopted());
  w.StrListField("command", t.command());
  w.StrField("workload", t.workload());
  w.UintField("run_uid", t.run_uid());
  w.StrField("run_user", t.run_user());
  w.BoolField("root", t.root());
  w.StrField("rung", t.rung());
  w.EndObjectOrRollback(mark);
}

}  // namespace

// MCP tool calls (tool_call, tool_list) and the call a kernel event happened in (docs/events.md).
void WriteTool(const writ::v1::Tool& t, JsonWriter& w) {
  w.Key("tool");
  w.BeginObject();
  w.StrField("name", t.name());
  w.StrField("call_id", t.call_id());
  w.StrField("arguments", t.arguments());
  if (t.arguments_truncated()) {
    w.Key("arguments_truncated");
    w.Bool(true);
  }
  w.UintField("arguments_bytes", t.arguments_bytes());
  w.StrField("arguments_sha256", t.arguments_sha256());
  w.StrField("status", t.status());
  w.StrField("error", t.error());
  w.StrField("rule", t.rule());
  w.UintField("duration_us", t.duration_us());
  w.UintField("in_flight", t.in_flight());
  w.StrListField("call_ids", t.call_ids());
  if (t.violations() != 0 || !t.status().empty()) {
    w.Key("violations");
    w.Uint(t.violations());
  }
  w.StrListField("violation_ids", t.violation_ids());
  w.StrListField("offered", t.offered());
  w.StrListField("hidden", t.hidden());
  w.EndObject();
}

// A task's DNS query answered by writd's stub resolver (kind "dns"); omitted when empty.
void WriteDns(const writ::v1::Dns& d, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("dns");
  w.BeginObject();
  w.StrField("query", d.query());
  w.StrField("qtype", d.qtype());
  w.StrField("verdict", d.verdict());
  w.StrField("reason", d.reason());
  w.StrField("rule", d.rule());
  w.StrField("rcode", d.rcode());
  w.StrListField("answers", d.answers());
  w.StrListField("cnames", d.cnames());
  w.UintField("ttl", d.ttl());
  w.StrField("server", d.server());
  w.StrField("transport", d.transport());
  w.EndObjectOrRollback(mark);
}

void WriteAction(const writ::v1::Action& a, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("action");
  w.BeginObject();
  w.StrField("type", a.type());
  w.StrField("result", a.result());
  w.UintField("latency_us", a.latency_us());
  w.StrField("target", a.target());
  w.StrField("reason", a.reason());
  w.EndObjectOrRollback(mark);
}

void WriteApproval(const writ::v1::Approval& a, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("approval");
  w.BeginObject();
  w.StrField("id", a.id());
  w.StrField("action", a.action());
  w.StrField("action_hash", a.action_hash());
  w.StrField("expires", a.expires());
  w.StrField("decided_by", a.decided_by());
  w.StrField("decided_via", a.decided_via());
  w.StrField("scope", a.scope());
  w.StrField("reason", a.reason());
  w.EndObjectOrRollback(mark);
}

void WriteCredential(const writ::v1::Credential& c, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("credential");
  w.BeginObject();
  w.StrField("type", c.type());
  w.StrField("jti", c.jti());
  w.StrField("provider", c.provider());
  w.StrField("operation", c.operation());
  w.StrField("expires", c.expires());
  w.StrField("detail", c.detail());
  w.EndObjectOrRollback(mark);
}

void WriteAgent(const writ::v1::Agent& a, JsonWriter& w) {
  const auto mark = w.Save();
  w.Key("agent");
  w.BeginObject();
  w.StrField("spiffe_id", a.spiffe_id());
  w.StrField("task_id", a.task_id());
  w.StrField("principal", a.principal());
  w.StrField("intent", a.intent());
  w.StrField("parent_task", a.parent_task());
  w.StrListField("chain", a.chain());
  w.StrField("charter", a.charter());
  w.StrField("charter_sha256", a.charter_sha256());
  w.EndObjectOrRollback(mark);
}

void AppendJson(const writ::v1::Event& ev, std::string* out) {
  JsonWriter w(out);
  w.BeginObject();
  w.StrField("id", ev.id());
  w.StrField("time", ev.time());
  w.UintField("ktime_ns", ev.ktime_ns());
  w.StrField("kind", ev.kind());
  if (ev.has_agent()) WriteAgent(ev.agent(), w);
  if (ev.has_process()) WriteProcess(ev.process(), ev.kind() == "exit", w);
  if (ev.has_file()) WriteFile(ev.file(), w);
  if (ev.has_network()) WriteNetwork(ev.network(), w);
  if (ev.has_syscall()) WriteSyscall(ev.syscall(), w);
  if (ev.has_tool()) WriteTool(ev.tool(), w);
  if (ev.has_dns()) WriteDns(ev.dns(), w);
  w.StrField("verdict", ev.verdict());
  w.StrField("outcome", ev.outcome());
  w.StrField("enforcement", ev.enforcement());
  if (ev.has_finding()) WriteFinding(ev.finding(), w);
  if (ev.has_action()) WriteAction(ev.action(), w);
  if (ev.has_approval()) WriteApproval(ev.approval(), w);
  if (ev.has_task()) WriteTask(ev.task(), w);
  if (ev.has_credential()) WriteCredential(ev.credential(), w);
  w.StrField("host", ev.host());
  w.EndObject();
}

}  // namespace writ::sinks
