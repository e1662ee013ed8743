// SuggestIntent: recorded events → a least-privilege intent (writ policy suggest). It generalises only
// where exact paths would not survive the next run (shared libraries, a busy working directory,
// /proc/<pid>) and never widens to sensitive roots such as /etc or /home.
#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "intent/glob.h"
#include "intent/intent.h"
#include "yaml-cpp/yaml.h"

namespace writ::intent {
namespace {

constexpr int kCollapseMin = 3;            // files in one directory before it becomes DIR/**
constexpr double kRepoShare = 0.8;         // share of non-system paths under the working directory
const char* const kLibRoots[] = {"/usr/local/lib", "/usr/lib64", "/usr/lib", "/lib64", "/lib"};
const char* const kNeverCollapse[] = {"/", "/etc", "/home", "/root", "/var", "/proc", "/sys",
                                      "/dev", "/run", "/usr", "/usr/bin", "/bin", "/usr/sbin", "/sbin"};
// Secrets a suggested intent denies explicitly unless the task was seen touching them.
const char* const kSecretDenies[] = {"/etc/shadow", "/etc/gshadow", "**/.ssh/**", "**/.aws/**",
                                     "**/.env", "**/.gnupg/**"};

std::string Parent(const std::string& p) {
  size_t s = p.rfind('/');
  return s == 0 || s == std::string::npos ? "/" : p.substr(0, s);
}

int Depth(absl::string_view p) { return p == "/" ? 0 : static_cast<int>(std::count(p.begin(), p.end(), '/')); }

bool Under(absl::string_view p, absl::string_view dir) {
  return absl::StartsWith(p, dir) && (p.size() == dir.size() || p[dir.size()] == '/' || dir == "/");
}

bool Collapsible(const std::string& dir) {
  for (const char* n : kNeverCollapse) {
    if (dir == n) return false;
  }
  return Depth(dir) >= 2 || dir == "/tmp";
}

// /proc/1234/maps → /proc/*/maps, /dev/pts/3 → /dev/pts/*: names that change every run.
std::string Canonical(const std::string& p) {
  std::vector<std::string> seg = absl::StrSplit(p.substr(1), '/');
  int64_t n;
  if (seg.size() >= 2 && seg[0] == "proc" && (absl::SimpleAtoi(seg[1], &n) || seg[1] == "self" ||
                                               seg[1] == "thread-self")) {
    seg[1] = "*";
    if (seg.size() >= 4 && seg[2] == "task" && absl::SimpleAtoi(seg[3], &n)) seg[3] = "*";
  }
  if (seg.size() == 3 && seg[0] == "dev" && seg[1] == "pts") seg[2] = "*";
  return "/" + absl::StrJoin(seg, "/");
}

std::string LibRoot(const std::string& p) {
  for (const char* r : kLibRoots) {
    if (Under(p, r)) return absl::StrCat(r, "/**");
  }
  std::string base = p.substr(p.rfind('/') + 1);
  const bool shared_object = absl::EndsWith(base, ".so") || absl::StrContains(base, ".so.");
  if (shared_object && base != "ld.so.cache" && Collapsible(Parent(p))) return Parent(p) + "/**";
  return "";
}

// Exact paths → patterns: directories with kCollapseMin+ entries become DIR/**.
std::set<std::string> Generalise(const std::set<std::string>& paths) {
  std::map<std::string, int> per_dir;
  for (const auto& p : paths) {
    if (p.find('*') == std::string::npos) ++per_dir[Parent(p)];
  }
  std::set<std::string> out;
  for (const auto& p : paths) {
    std::string d = Parent(p);
    if (p.find('*') == std::string::npos && per_dir[d] >= kCollapseMin && Collapsible(d)) {
      out.insert(d + "/**");
    } else {
      out.insert(p);
    }
  }
  // Drop entries already covered by a DIR/** of the set.
  std::set<std::string> pruned;
  for (const auto& p : out) {
    bool covered = false;
    for (const auto& q : out) {
      if (q != p && absl::EndsWith(q, "/**") && Under(p, q.substr(0, q.size() - 3))) covered = true;
    }
    if (!covered) pruned.insert(p);
  }
  return pruned;
}

std::string SafeName(const std::string& name) {
  std::string n;
  for (char c : absl::AsciiStrToLower(name)) {
    n.push_back(absl::ascii_isalnum(c) ? c : '-');
  }
  while (!n.empty() && n.front() == '-') n.erase(n.begin());
  while (!n.empty() && n.back() == '-') n.pop_back();
  if (n.size() > 63) n.resize(63);
  while (!n.empty() && n.back() == '-') n.pop_back();
  return n.empty() ? "suggested" : n;
}

void EmitList(YAML::Emitter& y, const std::set<std::string>& items) {
  y << YAML::BeginSeq;
  for (const auto& i : items) y << YAML::DoubleQuoted << i;
  y << YAML::EndSeq;
}

}  // namespace

std::string SuggestIntent(const std::string& name, const std::vector<writ::v1::Event>& events,
                          const std::string& task_id) {
  std::set<std::string> exes, reads, writes;
  std::map<std::string, std::set<uint32_t>> dests;  // ip → ports
  std::set<std::string> sockets;  // unix sockets the task reached (the connect allow list denies the rest)
  std::set<std::string> tools, offered;  // MCP tools called / offered
  const writ::v1::Event* first_exec = nullptr;
  const writ::v1::Event* first_read = nullptr;
  const writ::v1::Event* first_write = nullptr;
  const writ::v1::Event* first_connect = nullptr;
  for (const auto& ev : events) {
    if (ev.kind() == "exec" && absl::StartsWith(ev.process().exe(), "/")) {
      exes.insert(ev.process().exe());
      if (!first_exec) first_exec = &ev;
    } else if (ev.kind() == "open" && absl::StartsWith(ev.file().path(), "/") && !ev.file().unresolved()) {
      bool w = false;
      for (const auto& f : ev.file().flags()) w |= f == "write" || f == "create" || f == "truncate";
      (w ? writes : reads).insert(Canonical(ev.file().path()));
      if (w && !first_write) first_write = &ev;
      if (!w && !first_read) first_read = &ev;
    } else if (ev.kind() == "connect" && ev.network().family() == "unix") {
      // The socket reached (the name given must be listed too when it differs: both are judged).
      const auto& n = ev.network();
      if (n.result() == 0 && (absl::StartsWith(n.path(), "/") || absl::StartsWith(n.path(), "@"))) {
        sockets.insert(n.path());
        if (!n.peer_path().empty()) sockets.insert(n.peer_path());
      }
    } else if (ev.kind() == "connect" && !ev.network().dst_ip().empty()) {
      dests[ev.network().dst_ip()].insert(ev.network().dst_port());
      if (!first_connect) first_connect = &ev;
    } else if (ev.kind() == "tool_call" && !ev.tool().name().empty() &&
               ev.tool().status() != "denied") {
      tools.insert(ev.tool().name());  // called through the MCP gateway (and not refused)
    } else if (ev.kind() == "tool_list") {
      offered.insert(ev.tool().offered().begin(), ev.tool().offered().end());
    }
  }

  // Shared libraries and runtime data collapse to their roots.
  std::set<std::string> read_pats, write_pats, other_reads, other_writes;
  for (const auto& p : reads) {
    std::string lib = LibRoot(p);
    if (!lib.empty()) {
      read_pats.insert(lib);
    } else {
      other_reads.insert(p);
    }
  }
  other_writes = writes;

  // The working directory: the deepest directory (depth >= 2) holding most of the task's own files.
  std::string repo;
  {
    std::map<std::string, int> count;
    // Only the task's own files count: system and scratch locations never become ${repo}.
    std::set<std::string> all;
    for (const auto* src : {&other_reads, &other_writes}) {
      for (const auto& p : *src) {
        bool system = false;
        for (const char* r : {"/proc", "/sys", "/dev", "/tmp", "/etc", "/usr", "/lib", "/lib64", "/run",
                              "/var", "/bin", "/sbin", "/opt"}) {
          system |= Under(p, r);
        }
        if (!system) all.insert(p);
      }
    }
    for (const auto& p : all) {
      for (std::string d = Parent(p); Depth(d) >= 2; d = Parent(d)) ++count[d];
    }
    for (const auto& [d, c] : count) {
      if (c >= kCollapseMin && c >= kRepoShare * all.size() && Collapsible(d) &&
          d.find('*') == std::string::npos && d.size() > repo.size()) {
        repo = d;
      }
    }
  }
  auto take_repo = [&](std::set<std::string>& from, std::set<std::string>& to) {
    bool any = false;
    for (auto it = from.begin(); it != from.end();) {
      if (!repo.empty() && Under(*it, repo)) {
        it = from.erase(it);
        any = true;
      } else {
        ++it;
      }
    }
    if (any) to.insert("${repo}/**");
  };
  take_repo(other_writes, write_pats);
  take_repo(other_reads, read_pats);
  if (write_pats.contains("${repo}/**")) read_pats.erase("${repo}/**");  // write covers read
  for (const auto& p : Generalise(other_writes)) write_pats.insert(p);
  // Reads already covered by a write pattern need no read grant.
  std::vector<Glob> write_globs;
  absl::flat_hash_map<std::string, std::string> repo_param;
  for (const auto& w : write_pats) {
    std::string concrete = w == "${repo}/**" ? repo + "/**" : w;
    if (auto g = Glob::ParsePath(concrete); g.ok()) write_globs.push_back(*g);
  }
  std::set<std::string> uncovered;
  for (const auto& r : other_reads) {
    bool covered = std::any_of(write_globs.begin(), write_globs.end(), [&](const Glob& g) { return g.Match(r); });
    if (!covered) uncovered.insert(r);
  }
  for (const auto& p : Generalise(uncovered)) read_pats.insert(p);

  std::set<std::string> exec_pats = Generalise(exes);

  std::set<std::string> denies;
  for (const char* d : kSecretDenies) {
    auto g = Glob::ParsePath(d);
    bool seen = false;
    for (const auto* set : {&reads, &writes}) {
      for (const auto& p : *set) seen |= g->Match(p);
    }
    if (!seen) denies.insert(d);
  }

  YAML::Emitter y;
  y << YAML::Comment(absl::StrCat("Suggested by writ from task ", task_id.empty() ? "(unknown)" : task_id,
                                  " (", events.size(), " events): it allows what was observed; review."));
  y << YAML::BeginMap;
  y << YAML::Key << "apiVersion" << YAML::Value << "writ.dev/v1";
  y << YAML::Key << "kind" << YAML::Value << "Intent";
  y << YAML::Key << "name" << YAML::Value << SafeName(name);
  y << YAML::Key << "description" << YAML::Value
    << absl::StrCat("Least-privilege intent suggested from task ", task_id.empty() ? "(unknown)" : task_id);
  if (!repo.empty()) {
    y << YAML::Key << "params" << YAML::Value << YAML::BeginMap << YAML::Key << "repo" << YAML::Value
      << YAML::BeginMap << YAML::Key << "type" << YAML::Value << "path" << YAML::Key << "default"
      << YAML::Value << YAML::DoubleQuoted << repo << YAML::EndMap << YAML::EndMap;
  }
  y << YAML::Key << "exec" << YAML::Value << YAML::BeginMap << YAML::Key << "allow" << YAML::Value;
  EmitList(y, exec_pats);
  y << YAML::EndMap;
  y << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "read" << YAML::Value;
  EmitList(y, read_pats);
  y << YAML::Key << "write" << YAML::Value;
  EmitList(y, write_pats);
  y << YAML::Key << "deny" << YAML::Value;
  EmitList(y, denies);
  y << YAML::EndMap;
  y << YAML::Key << "network" << YAML::Value << YAML::BeginMap << YAML::Key << "connect" << YAML::Value
    << YAML::BeginMap << YAML::Key << "allow" << YAML::Value << YAML::BeginSeq;
  for (const auto& [ip, ports] : dests) {
    y << YAML::Flow << YAML::BeginMap << YAML::Key << "cidr" << YAML::Value << YAML::DoubleQuoted << ip;
    if (!ports.contains(0)) {
      y << YAML::Key << "ports" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (uint32_t p : ports) y << p;
      y << YAML::EndSeq;
    }
    y << YAML::EndMap;
  }
  y << YAML::EndSeq << YAML::EndMap;
  if (!sockets.empty()) {
    y << YAML::Key << "unix" << YAML::Value << YAML::BeginMap << YAML::Key << "allow" << YAML::Value
      << YAML::Flow << YAML::BeginSeq;
    for (const auto& p : sockets) y << YAML::DoubleQuoted << p;
    y << YAML::EndSeq << YAML::EndMap;
  }
  y << YAML::EndMap;
  if (!tools.empty() || !offered.empty()) {
    // The tools the recording called; what the server offered and nobody called is denied, so the
    // model never sees it (docs/policy.md, Tools).
    std::set<std::string> unused;
    for (const auto& t : offered) {
      if (!tools.contains(t)) unused.insert(t);
    }
    y << YAML::Key << "tools" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "allow" << YAML::Value;
    EmitList(y, tools);
    if (!unused.empty()) {
      y << YAML::Key << "deny" << YAML::Value;
      EmitList(y, unused);
    }
    y << YAML::EndMap;
  }
  y << YAML::Key << "on_violation" << YAML::Value << YAML::Flow << YAML::BeginSeq << "alert" << YAML::EndSeq;

  // Tests pin the observed behaviour (allowed) and one thing it never did (a violation).
  y << YAML::Key << "tests" << YAML::Value << YAML::BeginSeq;
  auto allow_test = [&](const writ::v1::Event* ev) {
    if (ev == nullptr) return;
    y << YAML::BeginMap << YAML::Key << "event" << YAML::Value << YAML::Flow << YAML::BeginMap;
    y << YAML::Key << "kind" << YAML::Value << ev->kind();
    if (ev->kind() == "exec") {
      y << YAML::Key << "process" << YAML::Value << YAML::BeginMap << YAML::Key << "exe" << YAML::Value
        << YAML::DoubleQuoted << ev->process().exe() << YAML::EndMap;
    } else if (ev->kind() == "open") {
      y << YAML::Key << "file" << YAML::Value << YAML::BeginMap << YAML::Key << "path" << YAML::Value
        << YAML::DoubleQuoted << ev->file().path() << YAML::Key << "flags" << YAML::Value << YAML::Flow
        << YAML::BeginSeq;
      for (const auto& f : ev->file().flags()) y << f;
      y << YAML::EndSeq << YAML::EndMap;
    } else {
      y << YAML::Key << "network" << YAML::Value << YAML::BeginMap << YAML::Key << "dst_ip" << YAML::Value
        << YAML::DoubleQuoted << ev->network().dst_ip() << YAML::Key << "dst_port" << YAML::Value
        << ev->network().dst_port() << YAML::EndMap;
    }
    y << YAML::EndMap << YAML::Key << "expect" << YAML::Value << "allow" << YAML::EndMap;
  };
  allow_test(first_exec);
  allow_test(first_read);
  allow_test(first_write);
  allow_test(first_connect);
  y << YAML::BeginMap << YAML::Key << "event" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key
    << "kind" << YAML::Value << "exec" << YAML::Key << "process" << YAML::Value << YAML::BeginMap
    << YAML::Key << "exe" << YAML::Value << "/nonexistent/writ-never-observed" << YAML::EndMap << YAML::EndMap
    << YAML::Key << "expect" << YAML::Value << "violation" << YAML::EndMap;
  y << YAML::EndSeq;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace writ::intent
