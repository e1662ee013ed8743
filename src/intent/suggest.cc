// Suggest: one task's recorded events → an intent a person would accept (writ policy suggest). The
// rules come from suggest_paths.cc; this file collects what the task did, writes the YAML with its
// parameters, its secret denies and `tests:` drawn from the recording.
#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "intent/glob.h"
#include "intent/intent.h"
#include "intent/suggest_internal.h"
#include "util/terminal_text.h"
#include "yaml-cpp/yaml.h"

namespace writ::intent {
namespace {

using suggest::Param;

std::string SafeName(const std::string& name) {
  std::string n;
  for (char c : absl::AsciiStrToLower(name)) n.push_back(absl::ascii_isalnum(c) ? c : '-');
  while (!n.empty() && n.front() == '-') n.erase(n.begin());
  while (!n.empty() && n.back() == '-') n.pop_back();
  if (n.size() > 63) n.resize(63);
  while (!n.empty() && n.back() == '-') n.pop_back();
  return n.empty() ? "suggested" : n;
}

bool IsWrite(const writ::v1::Event& ev) {
  for (const auto& f : ev.file().flags()) {
    if (f == "write" || f == "create" || f == "truncate") return true;
  }
  return false;
}

// What one task did, with the first event of each observed (stable) path as its sample.
struct Observed {
  std::map<std::string, const writ::v1::Event*> exes, reads, writes;
  std::map<std::string, std::set<uint32_t>> dests;  // address → ports (0 = any)
  std::map<std::string, const writ::v1::Event*> dest_sample;
  // DNS egress: connects to an address the task's own DNS answer named (network.host), by name;
  // and every name it resolved (a dns event answered), for network.dns.
  std::map<std::string, std::set<uint32_t>> hosts;
  std::map<std::string, const writ::v1::Event*> host_sample;
  std::set<std::string> resolved;
  // Unix sockets reached: both names (the one given, the socket file reached) are judged.
  std::map<std::string, const writ::v1::Event*> sockets;
  std::map<std::string, std::string> secrets;  // path → pattern
  std::map<std::string, const writ::v1::Event*> secret_sample;
  std::set<std::string> notes;
  std::map<std::string, std::string> task_params;
  std::vector<std::string> command;
  std::set<std::string> tools, offered;  // MCP tools called (and not refused) / offered
};

Observed Collect(const std::vector<writ::v1::Event>& events) {
  Observed o;
  for (const auto& ev : events) {
    if (ev.kind() == "task_start" && o.command.empty()) {
      o.command.assign(ev.task().command().begin(), ev.task().command().end());
      o.task_params.insert(ev.task().params().begin(), ev.task().params().end());
    } else if (ev.kind() == "exec" && absl::StartsWith(ev.process().exe(), "/")) {
      // ld.so PROGRAM: exec.allow judges the program the loader runs, not the loader. One that
      // could not be named whole is never allowed: no grant.
      if (ev.process().unresolved()) continue;
      const std::string& exe =
          ev.process().loaded().empty() ? ev.process().exe() : ev.process().loaded();
      if (const char* s = suggest::SecretOf(exe)) {
        o.secrets.emplace(exe, s);
        o.secret_sample.emplace(exe, &ev);
        continue;
      }
      o.exes.emplace(exe, &ev);
    } else if (ev.kind() == "open" && absl::StartsWith(ev.file().path(), "/")) {
      const std::string& path = ev.file().path();
      if (const char* s = suggest::SecretOf(path)) {
        o.secrets.emplace(path, s);
        o.secret_sample.emplace(path, &ev);
        continue;
      }
      // A failed open accessed nothing, and writd allows it unless a deny rule names it: no grant.
      if (ev.file().result() < 0 || ev.file().unresolved()) continue;
      (IsWrite(ev) ? o.writes : o.reads).emplace(path, &ev);
    } else if (ev.kind() == "connect" && ev.network().family() == "unix") {
      // A socket that was not reached (glibc probing nscd) needs no grant: writd allows it.
      const auto& n = ev.network();
      if (n.result() != 0) continue;
      for (const std::string& name : {n.path(), n.peer_path()}) {
        if (absl::StartsWith(name, "/") || absl::StartsWith(name, "@"))
          o.sockets.emplace(name, &ev);
      }
    } else if (ev.kind() == "connect" && !ev.network().host().empty()) {
      // Reached by a name it resolved: the name is the rule, not the address (which changes).
      o.hosts[ev.network().host()].insert(ev.network().dst_port());
      o.host_sample.emplace(ev.network().host(), &ev);
    } else if (ev.kind() == "connect" && !ev.network().dst_ip().empty()) {
      o.dests[ev.network().dst_ip()].insert(ev.network().dst_port());
      o.dest_sample.emplace(ev.network().dst_ip(), &ev);
    } else if (ev.kind() == "dns" && ev.dns().verdict() == "allowed" && !ev.dns().query().empty()) {
      o.resolved.insert(ev.dns().query());
    } else if (ev.kind() == "tool_call" && !ev.tool().name().empty() &&
               ev.tool().status() != "denied") {
      o.tools.insert(ev.tool().name());  // called through the MCP gateway
    } else if (ev.kind() == "tool_list") {
      o.offered.insert(ev.tool().offered().begin(), ev.tool().offered().end());
    }
  }
  return o;
}

// A rule's sample for its test: a recorded event, and when its path holds a per-run name, a path
// the rule allows without one (the test then reads /proc/self/maps, not /proc/4242/maps).
struct Sample {
  const writ::v1::Event* ev = nullptr;
  std::string path;  // "" = the event's own
};
// pattern → its sample.
using Rules = std::map<std::string, Sample>;

// A concrete path a stable glob allows: ** segments dropped, * → self under /proc, else example.
std::string Instance(const std::string& stable) {
  std::vector<std::string> out;
  for (absl::string_view seg : absl::StrSplit(absl::string_view(stable).substr(1), '/')) {
    if (seg == "**") continue;
    const std::string with = out.size() == 1 && out[0] == "proc" ? "self" : "example";
    out.push_back(absl::StrReplaceAll(seg, {{"*", with}}));
  }
  return "/" + absl::StrJoin(out, "/");
}

Rules MakeRules(const std::map<std::string, const writ::v1::Event*>& seen, bool write, bool exec,
                const std::vector<Param>& params, std::set<std::string>* notes) {
  std::set<std::string> pats;
  std::multimap<std::string, Sample> by_pattern;
  for (const auto& [raw_name, ev] : seen) {
    const std::string& raw = raw_name;  // a lambda may not capture a structured binding (clang 14)
    // A name the task chose can carry rule syntax: `a*b` would become a wildcard, `${x}` a
    // parameter. Such a name is left out, and said so, never turned into a rule.
    if (raw.find_first_of("*?") != std::string::npos || absl::StrContains(raw, "${")) {
      notes->insert(absl::StrCat("left out, its name has glob or parameter syntax: ", raw));
      continue;
    }
    // A parameter's value is itself a per-run name: match it before making names stable.
    const bool in_param = std::any_of(params.begin(), params.end(), [&](const Param& p) {
      return p.dir ? suggest::Under(raw, p.value) : raw == p.value;
    });
    const std::string path = in_param || exec ? raw : suggest::Stable(raw, notes);
    suggest::PathRule r =
        exec ? suggest::ExecRuleFor(path, params) : suggest::RuleFor(path, write, params);
    if (r.pattern.empty()) continue;
    pats.insert(r.pattern);
    // A loaded program's event names the loader as its exe: the test names the program.
    const std::string& own = ev->process().loaded().empty() ? ev->process().exe() : raw;
    by_pattern.emplace(r.pattern, Sample{ev, path != raw ? Instance(path) : exec ? own : ""});
  }
  Rules out;
  for (const auto& p : suggest::Generalise(pats, write)) {
    Sample sample;
    for (const auto& [q, smp] : by_pattern) {
      if (!suggest::Covers(p, q)) continue;
      // The first recorded path the rule allows, preferring one that is the same every run.
      if (!sample.ev || (!sample.path.empty() && smp.path.empty())) sample = smp;
    }
    out.emplace(p, sample);
  }
  return out;
}

void EmitEvent(YAML::Emitter& y, const writ::v1::Event& ev, const std::string& path_override = "") {
  y << YAML::Flow << YAML::BeginMap << YAML::Key << "kind" << YAML::Value << ev.kind();
  if (ev.kind() == "exec") {
    y << YAML::Key << "process" << YAML::Value << YAML::BeginMap << YAML::Key << "exe"
      << YAML::Value << YAML::DoubleQuoted
      << (path_override.empty() ? ev.process().exe() : path_override) << YAML::EndMap;
  } else if (ev.kind() == "open") {
    y << YAML::Key << "file" << YAML::Value << YAML::BeginMap << YAML::Key << "path" << YAML::Value
      << YAML::DoubleQuoted << (path_override.empty() ? ev.file().path() : path_override)
      << YAML::Key << "flags" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& f : ev.file().flags()) y << f;
    y << YAML::EndSeq << YAML::EndMap;
  } else if (ev.network().family() == "unix") {
    y << YAML::Key << "network" << YAML::Value << YAML::BeginMap << YAML::Key << "family"
      << YAML::Value << "unix" << YAML::Key << "path" << YAML::Value << YAML::DoubleQuoted
      << ev.network().path();
    if (!ev.network().peer_path().empty()) {
      y << YAML::Key << "peer_path" << YAML::Value << YAML::DoubleQuoted
        << ev.network().peer_path();
    }
    y << YAML::EndMap;
  } else {
    y << YAML::Key << "network" << YAML::Value << YAML::BeginMap << YAML::Key << "dst_ip"
      << YAML::Value << YAML::DoubleQuoted << ev.network().dst_ip() << YAML::Key << "dst_port"
      << YAML::Value << ev.network().dst_port();
    if (!ev.network().host().empty()) {
      y << YAML::Key << "host" << YAML::Value << YAML::DoubleQuoted << ev.network().host();
    }
    y << YAML::EndMap;
  }
  y << YAML::EndMap;
}

void EmitList(YAML::Emitter& y, const Rules& rules) {
  if (rules.empty()) y << YAML::Flow;  // `[]` on the key's line
  y << YAML::BeginSeq;
  for (const auto& [p, sample] : rules) y << YAML::DoubleQuoted << p;
  y << YAML::EndSeq;
}

bool Matches(const std::string& pattern, const std::string& path,
             const absl::flat_hash_map<std::string, std::string>& values) {
  std::string concrete = pattern;
  for (const auto& [k, v] : values) concrete = absl::StrReplaceAll(concrete, {{"${" + k + "}", v}});
  auto g = Glob::ParsePath(concrete);
  return g.ok() && g->Match(path);
}

}  // namespace

Suggestion Suggest(const std::string& name, const std::vector<writ::v1::Event>& events,
                   const std::string& task_id) {
  Observed o = Collect(events);
  std::set<std::string> all_paths;
  for (const auto* m : {&o.exes, &o.reads, &o.writes}) {
    for (const auto& [p, ev] : *m) all_paths.insert(p);
  }
  const std::vector<Param> params = suggest::ParamsFrom(o.task_params, o.command, all_paths);
  Suggestion out;
  for (const auto& p : params) out.params[p.name] = p.value;

  Rules exec = MakeRules(o.exes, false, true, params, &o.notes);
  Rules writes = MakeRules(o.writes, true, false, params, &o.notes);
  Rules reads = MakeRules(o.reads, false, false, params, &o.notes);
  // A runtime may read its own program file, and not every run does: node reads its binary after
  // /proc/self/maps only when its code landed where it looks (ASLR), so one recording can lack the
  // read the next run makes. A program the task may run is mapped into it anyway: each may be read.
  for (const auto& [pattern, smp] : exec) {
    const std::string& prog = pattern;  // a lambda may not capture a structured binding (clang 14)
    const bool covered = std::any_of(reads.begin(), reads.end(),
                                     [&](const auto& r) { return suggest::Covers(r.first, prog); });
    if (!covered) reads.emplace(prog, Sample{});
  }
  // A write grant covers reading: drop reads a write rule already allows.
  for (auto it = reads.begin(); it != reads.end();) {
    bool covered = std::any_of(writes.begin(), writes.end(),
                               [&](const auto& w) { return suggest::Covers(w.first, it->first); });
    it = covered ? reads.erase(it) : std::next(it);
  }

  Rules sockets;  // their names, made stable like paths
  for (const auto& [name, ev] : o.sockets) {
    std::string n = absl::StartsWith(name, "/") ? suggest::Stable(name, &o.notes) : name;
    sockets.emplace(n, Sample{n == name ? ev : nullptr, ""});
  }

  // Every recorded string in a comment goes through TerminalSafe: a path is the task's choice, and
  // a newline in it would otherwise start a YAML line of the task's own (`mode: monitor`).
  const std::string task = TerminalSafe(task_id.empty() ? "(unknown)" : task_id);
  std::string head =
      absl::StrCat("# Suggested by writ from task ", task, " (", events.size(),
                   " events): it allows what was observed, generalised; review it.\n");
  for (const auto& p : params) {
    absl::StrAppend(&head, "# ${", p.name, "}: the ", p.dir ? "directory " : "file ",
                    TerminalSafe(p.value), " the task's command named; give it with --param ",
                    p.name, "=...\n");
  }
  for (const auto& n : o.notes) absl::StrAppend(&head, "# Rewritten: ", TerminalSafe(n), "\n");
  for (const auto& [path, pat] : o.secrets) {
    out.secrets.push_back(absl::StrCat(TerminalSafe(path), " (", TerminalSafe(pat), ")"));
    absl::StrAppend(&head, "# SECRET: the recording touched ", out.secrets.back(),
                    ": denied by files.deny, never allowed\n");
  }
  if (o.dests.empty() && o.hosts.empty()) {
    absl::StrAppend(&head, "# Network: the task connected nowhere; all egress is denied.\n");
  } else if (o.hosts.empty()) {
    absl::StrAppend(&head,
                    "# Network: addresses as connected to (no connect used a name the task "
                    "resolved through writd's DNS stub).\n");
  } else {
    absl::StrAppend(&head,
                    "# Network: names the task resolved and connected to (their addresses change: "
                    "writd's DNS stub pins them); addresses where it used no name.\n");
  }

  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "apiVersion" << YAML::Value << "writ.dev/v1";
  y << YAML::Key << "kind" << YAML::Value << "Intent";
  y << YAML::Key << "name" << YAML::Value << SafeName(name);
  y << YAML::Key << "description" << YAML::Value
    << absl::StrCat("Suggested from task ", task, " by writ policy suggest");
  if (!params.empty()) {
    y << YAML::Key << "params" << YAML::Value << YAML::BeginMap;
    for (const auto& p : params) {
      y << YAML::Key << p.name << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "type"
        << YAML::Value << "path" << YAML::Key << "required" << YAML::Value << true << YAML::EndMap;
    }
    y << YAML::EndMap;
  }
  y << YAML::Key << "exec" << YAML::Value << YAML::BeginMap << YAML::Key << "allow" << YAML::Value;
  EmitList(y, exec);
  y << YAML::EndMap;
  y << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "read" << YAML::Value;
  EmitList(y, reads);
  y << YAML::Key << "write" << YAML::Value;
  EmitList(y, writes);
  y << YAML::Key << "deny" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : suggest::SecretRules()) y << YAML::DoubleQuoted << s.pattern;
  y << YAML::EndSeq << YAML::EndMap;
  y << YAML::Key << "network" << YAML::Value << YAML::BeginMap << YAML::Key << "connect"
    << YAML::Value << YAML::BeginMap << YAML::Key << "allow" << YAML::Value;
  if (o.dests.empty() && o.hosts.empty()) y << YAML::Flow;
  y << YAML::BeginSeq;
  for (const auto& [host, ports] : o.hosts) {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "host" << YAML::Value << YAML::DoubleQuoted
      << host;
    if (!ports.contains(0)) {
      y << YAML::Key << "ports" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (uint32_t p : ports) y << p;
      y << YAML::EndSeq;
    }
    y << YAML::EndMap;
  }
  for (const auto& [ip, ports] : o.dests) {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "cidr" << YAML::Value << YAML::DoubleQuoted
      << ip;
    if (!ports.contains(0)) {
      y << YAML::Key << "ports" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (uint32_t p : ports) y << p;
      y << YAML::EndSeq;
    }
    y << YAML::EndMap;
  }
  y << YAML::EndSeq << YAML::EndMap;
  // Names resolved but never connected to by name: without network.dns only the connect rules'
  // names may be resolved, so the recording's other lookups are listed.
  std::set<std::string> dns_names = o.resolved;
  for (const auto& [h, ports] : o.hosts) dns_names.insert(h);
  if (dns_names.size() > o.hosts.size()) {
    y << YAML::Key << "dns" << YAML::Value << YAML::BeginMap << YAML::Key << "allow" << YAML::Value
      << YAML::BeginSeq;
    for (const auto& n : dns_names) y << YAML::DoubleQuoted << n;
    y << YAML::EndSeq << YAML::EndMap;
  }
  // With connect.allow present, a socket not listed here is denied (network.unix.default).
  if (!sockets.empty()) {
    y << YAML::Key << "unix" << YAML::Value << YAML::BeginMap << YAML::Key << "allow" << YAML::Value
      << YAML::BeginSeq;
    for (const auto& [name, smp] : sockets) y << YAML::DoubleQuoted << name;
    y << YAML::EndSeq << YAML::EndMap;
  }
  y << YAML::EndMap;
  if (!o.tools.empty() || !o.offered.empty()) {
    // The tools the recording called; what the server offered and nobody called is denied, so the
    // model never sees it (docs/policy.md, Tools).
    std::set<std::string> unused;
    for (const auto& t : o.offered) {
      if (!o.tools.contains(t)) unused.insert(t);
    }
    y << YAML::Key << "tools" << YAML::Value << YAML::BeginMap << YAML::Key << "allow"
      << YAML::Value << YAML::BeginSeq;
    for (const auto& t : o.tools) y << YAML::DoubleQuoted << t;
    y << YAML::EndSeq;
    if (!unused.empty()) {
      y << YAML::Key << "deny" << YAML::Value << YAML::BeginSeq;
      for (const auto& t : unused) y << YAML::DoubleQuoted << t;
      y << YAML::EndSeq;
    }
    y << YAML::EndMap;
  }
  y << YAML::Key << "on_violation" << YAML::Value << YAML::Flow << YAML::BeginSeq << "alert"
    << "kill" << YAML::EndSeq;

  // Tests: one recorded sample per rule (allowed), every secret location (denied: the recorded
  // touch itself when there was one), and a program the task never ran.
  y << YAML::Key << "tests" << YAML::Value << YAML::BeginSeq;
  auto test = [&](const writ::v1::Event& ev, const char* expect, const std::string& path = "") {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "event" << YAML::Value;
    EmitEvent(y, ev, path);
    y << YAML::Key << "expect" << YAML::Value << expect;
    if (!out.params.empty()) {
      y << YAML::Key << "params" << YAML::Value << YAML::Flow << YAML::BeginMap;
      for (const auto& p : params) y << YAML::Key << p.name << YAML::Value << p.value;
      y << YAML::EndMap;
    }
    y << YAML::EndMap;
  };
  for (const Rules* rules : {&exec, &reads, &writes}) {
    for (const auto& [p, smp] : *rules) {
      if (smp.ev) test(*smp.ev, "allow", smp.path);
    }
  }
  for (const auto& [ip, ev] : o.dest_sample) test(*ev, "allow");
  for (const auto& [host, ev] : o.host_sample) test(*ev, "allow");
  std::set<const writ::v1::Event*> socket_tested;
  for (const auto& [name, smp] : sockets) {
    // A recorded connect whose names are both listed as recorded.
    if (smp.ev && sockets.contains(smp.ev->network().path()) &&
        socket_tested.insert(smp.ev).second &&
        (smp.ev->network().peer_path().empty() ||
         sockets.contains(smp.ev->network().peer_path()))) {
      test(*smp.ev, "allow");
    }
  }
  for (const auto& s : suggest::SecretRules()) {
    const writ::v1::Event* touched = nullptr;
    for (const auto& [path, pat] : o.secrets) {
      if (pat == s.pattern && !touched) touched = o.secret_sample[path];
    }
    writ::v1::Event probe;
    probe.set_kind("open");
    probe.mutable_file()->set_path(s.sample);
    probe.mutable_file()->add_flags("read");
    test(touched ? *touched : probe, "violation");
  }
  writ::v1::Event never;
  never.set_kind("exec");
  for (const char* exe : {"/usr/bin/curl", "/usr/bin/wget", "/usr/bin/nc", "/usr/bin/sudo",
                          "/nonexistent/writ-never-observed"}) {
    bool allowed = std::any_of(exec.begin(), exec.end(),
                               [&](const auto& r) { return Matches(r.first, exe, out.params); });
    if (!allowed) {
      never.mutable_process()->set_exe(exe);
      break;
    }
  }
  if (!never.process().exe().empty()) test(never, "violation");
  y << YAML::EndSeq << YAML::EndMap;

  std::string doc = y.c_str();
  out.rule_lines = 0;
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    if (absl::StartsWith(line, "tests:")) break;
    ++out.rule_lines;
  }
  out.yaml = absl::StrCat(head, doc, "\n");
  return out;
}

}  // namespace writ::intent
