// Observed paths → the rules a person would write (writ policy suggest): package and runtime trees
// become their root with **, system reads their usual locations, per-process and per-boot names
// become globs, the directories the task's command named become ${params}, writes stay narrow, and
// the well-known secret locations are never allowed.
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "intent/glob.h"
#include "intent/suggest_internal.h"

namespace writ::intent::suggest {
namespace {

constexpr int kCollapseMin = 3;  // exact entries in one directory before it becomes DIR/**

// Directories that are never turned into DIR/** by counting (too much would come with them).
const char* const kNeverCollapse[] = {
    "/",    "/etc",   "/home",    "/root",    "/var",      "/proc", "/sys",           "/dev",
    "/run", "/usr",   "/usr/bin", "/bin",     "/usr/sbin", "/sbin", "/usr/local/bin", "/opt",
    "/mnt", "/media", "/srv",     "/var/lib", "/run/user"};
// System trees: read as a whole (/usr/<x>/**), never a parameter.
const char* const kSystemRoots[] = {"/usr",  "/lib",     "/lib32",     "/lib64",  "/libx32", "/bin",
                                    "/sbin", "/etc",     "/proc",      "/sys",    "/dev",    "/run",
                                    "/boot", "/var/lib", "/var/cache", "/var/run"};
const char* const kTempRoots[] = {"/tmp", "/var/tmp", "/dev/shm"};
// Directories holding a language's installed packages: the tree up to and including one of these
// names is read as a whole.
const char* const kPackageDirs[] = {"node_modules", "site-packages", "dist-packages"};

bool IsTempPath(absl::string_view p) {
  return std::any_of(std::begin(kTempRoots), std::end(kTempRoots),
                     [&](const char* r) { return Under(p, r); });
}

bool IsSystemPath(absl::string_view p) {
  return std::any_of(std::begin(kSystemRoots), std::end(kSystemRoots),
                     [&](const char* r) { return Under(p, r); });
}

bool Collapsible(const std::string& dir, bool writes) {
  for (const char* n : kNeverCollapse) {
    if (dir == n) return false;
  }
  // A write rule over a whole system tree is never narrow.
  if (writes && IsSystemPath(dir) && !Under(dir, "/dev/pts")) return false;
  return std::count(dir.begin(), dir.end(), '/') >= 2 || dir == "/tmp";
}

// A name part that differs every run: mktemp's XXXXXX, a hash, a pid-like number.
bool RandomToken(absl::string_view t) {
  if (t.size() < 6) return false;
  int digits = 0, lower = 0, upper = 0;
  for (char c : t) {
    if (absl::ascii_isdigit(c)) {
      ++digits;
    } else if (absl::ascii_islower(c)) {
      ++lower;
    } else if (absl::ascii_isupper(c)) {
      ++upper;
    } else {
      return false;
    }
  }
  if (digits == static_cast<int>(t.size())) return true;  // 123456
  // Letters and digits mixed (9f2c1e7a, aB3dE9), or both cases in one word (XyZqWe); a word with
  // one digit (python3, utf8) is a name.
  const int letters = lower + upper;
  return (digits >= 2 && letters >= 2) || (lower >= 2 && upper >= 2) ||
         (digits >= 1 && lower >= 1 && upper >= 1);
}

// A path segment with its random parts replaced by *; unchanged when it has none.
std::string StableSegment(const std::string& seg) {
  std::string out, tok;
  bool changed = false;
  auto flush = [&] {
    if (RandomToken(tok)) {
      out += "*";
      changed = true;
    } else {
      out += tok;
    }
    tok.clear();
  };
  for (char c : seg) {
    if (c == '.' || c == '-' || c == '_') {
      flush();
      out.push_back(c);
    } else {
      tok.push_back(c);
    }
  }
  flush();
  if (!changed) return seg;
  // "*.*" and the like say nothing more than "*".
  while (absl::StrContains(out, "**")) out = absl::StrReplaceAll(out, {{"**", "*"}});
  return out;
}

std::string PackageRoot(const std::string& p) {
  std::vector<absl::string_view> seg = absl::StrSplit(absl::string_view(p).substr(1), '/');
  for (size_t i = 0; i + 1 < seg.size(); ++i) {
    for (const char* d : kPackageDirs) {
      if (seg[i] == d) {
        return absl::StrCat("/", absl::StrJoin(seg.begin(), seg.begin() + i + 1, "/"), "/**");
      }
    }
  }
  return "";
}

// /usr/lib/x → /usr/lib/**, /usr/local/share/y → /usr/local/share/**, /lib64/z → /lib64/**.
std::string SystemTree(const std::string& p) {
  std::vector<absl::string_view> seg = absl::StrSplit(absl::string_view(p).substr(1), '/');
  if (seg.size() < 2) return "";
  if (seg[0] == "lib" || seg[0] == "lib32" || seg[0] == "lib64" || seg[0] == "libx32") {
    return absl::StrCat("/", seg[0], "/**");
  }
  if (seg[0] == "usr") {
    if (seg[1] == "local" && seg.size() >= 4) return absl::StrCat("/usr/local/", seg[2], "/**");
    if (seg[1] != "local" && seg.size() >= 3) return absl::StrCat("/usr/", seg[1], "/**");
  }
  if (seg[0] == "opt" && seg.size() >= 3) return absl::StrCat("/opt/", seg[1], "/**");
  return "";
}

std::string ParamName(const std::string& base, bool dir, const std::vector<Param>& taken) {
  std::string n;
  for (char c : absl::AsciiStrToLower(base)) n.push_back(absl::ascii_isalnum(c) ? c : '_');
  while (!n.empty() && n.back() == '_') n.pop_back();
  bool random = false;
  for (absl::string_view t : absl::StrSplit(base, absl::ByAnyChar(".-_"))) random |= RandomToken(t);
  if (n.empty() || random || !absl::ascii_isalpha(n[0]) || n.size() > 32) n = dir ? "dir" : "file";
  std::string name = n;
  for (int i = 2;; ++i) {
    bool used =
        std::any_of(taken.begin(), taken.end(), [&](const Param& p) { return p.name == name; });
    if (!used) return name;
    name = absl::StrCat(n, i);
  }
}

// "/a/b/" → "/a/b"; "" when the token is not an absolute, normalised path.
std::string NormalPath(std::string t) {
  while (t.size() > 1 && t.back() == '/') t.pop_back();
  if (t.empty() || t[0] != '/' || absl::StrContains(t, "//") || absl::StrContains(t, "*") ||
      absl::StrContains(t, "?") || absl::StrContains(t, "$")) {
    return "";
  }
  for (absl::string_view s : absl::StrSplit(absl::string_view(t).substr(1), '/')) {
    if (s == "." || s == "..") return "";
  }
  return t;
}

// Absolute paths inside one argument: the whole argument, or the words of a shell command
// (`sh -c "make -C /src/x"`), or an option's value (`--dir=/src/x`).
std::vector<std::string> PathsIn(absl::string_view arg) {
  std::vector<std::string> out;
  for (absl::string_view w : absl::StrSplit(arg, absl::ByAnyChar(" \t\n'\";&|<>()=,:"))) {
    if (absl::StartsWith(w, "/")) out.emplace_back(w);
  }
  return out;
}

}  // namespace

const std::vector<SecretRule>& SecretRules() {
  static const std::vector<SecretRule> kRules = {
      {"/etc/shadow", "/etc/shadow"},
      {"/etc/gshadow", "/etc/gshadow"},
      {"/etc/ssh/*_key", "/etc/ssh/ssh_host_ed25519_key"},
      {"**/.ssh/**", "/home/user/.ssh/id_ed25519"},
      {"**/id_rsa", "/home/user/keys/id_rsa"},
      {"**/id_ed25519", "/home/user/keys/id_ed25519"},
      {"**/.gnupg/**", "/home/user/.gnupg/private-keys-v1.d/k.key"},
      {"**/.env", "/srv/app/.env"},
      {"**/.aws/**", "/home/user/.aws/credentials"},
      {"**/.config/gcloud/**", "/home/user/.config/gcloud/credentials.db"},
      {"**/.azure/**", "/home/user/.azure/msal_token_cache.json"},
      {"**/.kube/**", "/home/user/.kube/config"},
      {"**/.docker/config.json", "/home/user/.docker/config.json"},
      {"**/.netrc", "/home/user/.netrc"},
      {"**/.git-credentials", "/home/user/.git-credentials"},
      {"**/.pgpass", "/home/user/.pgpass"},
      {"**/.local/share/keyrings/**", "/home/user/.local/share/keyrings/login.keyring"},
  };
  return kRules;
}

const char* SecretOf(absl::string_view path) {
  static const std::vector<Glob>* globs = [] {
    auto* g = new std::vector<Glob>;
    for (const auto& r : SecretRules()) g->push_back(*Glob::ParsePath(r.pattern));
    return g;
  }();
  for (size_t i = 0; i < globs->size(); ++i) {
    if ((*globs)[i].Match(path)) return SecretRules()[i].pattern;
  }
  return nullptr;
}

std::string Parent(const std::string& p) {
  size_t s = p.rfind('/');
  return s == 0 || s == std::string::npos ? "/" : p.substr(0, s);
}

bool Under(absl::string_view p, absl::string_view dir) {
  return absl::StartsWith(p, dir) && (p.size() == dir.size() || p[dir.size()] == '/' || dir == "/");
}

std::string Stable(const std::string& path, std::set<std::string>* why) {
  std::vector<std::string> seg = absl::StrSplit(path.substr(1), '/');
  int64_t n;
  auto num = [&](const std::string& s) { return absl::SimpleAtoi(s, &n); };
  if (seg.size() >= 2 && seg[0] == "proc" &&
      (num(seg[1]) || seg[1] == "self" || seg[1] == "thread-self")) {
    seg[1] = "*";
    if (seg.size() >= 4 && seg[2] == "task" && num(seg[3])) seg[3] = "*";
    if (seg.size() >= 4 && (seg[2] == "fd" || seg[2] == "fdinfo") && num(seg[3])) seg[3] = "*";
    why->insert("/proc/<pid>/... → /proc/*/... (process ids change every run)");
  } else if (seg.size() == 3 && seg[0] == "dev" && seg[1] == "pts" && num(seg[2])) {
    seg[2] = "*";
    why->insert("/dev/pts/<n> → /dev/pts/* (terminals change every run)");
  } else if (seg.size() >= 4 && seg[0] == "sys" && seg[1] == "fs" && seg[2] == "cgroup") {
    // The task's own cgroup (its id, a per-boot hash) lies between the root and the file read.
    why->insert("/sys/fs/cgroup/<group>/FILE → /sys/fs/cgroup/**/FILE (cgroup names are per task)");
    return absl::StrCat("/sys/fs/cgroup/**/", seg.back());
  } else if (IsTempPath(path)) {
    bool changed = false;
    for (auto& s : seg) {
      std::string st = StableSegment(s);
      changed |= st != s;
      s = std::move(st);
    }
    if (changed) why->insert("temporary names (mktemp suffixes, pids, hashes) → *");
  }
  return "/" + absl::StrJoin(seg, "/");
}

PathRule RuleFor(const std::string& path, bool write, const std::vector<Param>& params) {
  // The most specific parameter wins: ${docs} inside ${repo} stays ${docs}.
  const Param* best = nullptr;
  for (const auto& p : params) {
    if ((p.dir && Under(path, p.value)) || (!p.dir && path == p.value)) {
      if (!best || p.value.size() > best->value.size()) best = &p;
    }
  }
  if (best) {
    if (!best->dir) return {absl::StrCat("${", best->name, "}"), true};
    return {absl::StrCat("${", best->name, "}/**"), true};
  }
  if (!write) {
    if (std::string root = PackageRoot(path); !root.empty()) return {root, true};
    if (std::string tree = SystemTree(path); !tree.empty()) return {tree, true};
  }
  return {path, false};
}

PathRule ExecRuleFor(const std::string& exe, const std::vector<Param>& params) {
  for (const auto& p : params) {
    if (p.dir && Under(exe, p.value) && exe != p.value) {
      // A program inside the task's own directory: that program, not everything the task can write.
      return {absl::StrCat("${", p.name, "}", exe.substr(p.value.size())), false};
    }
  }
  if (std::string root = PackageRoot(exe); !root.empty()) return {root, true};
  return {exe, false};
}

std::set<std::string> Generalise(const std::set<std::string>& items, bool writes) {
  std::map<std::string, int> per_dir;
  for (const auto& p : items) {
    if (!absl::StrContains(p, "**") && !absl::StartsWith(p, "${")) ++per_dir[Parent(p)];
  }
  std::set<std::string> out;
  for (const auto& p : items) {
    std::string d = Parent(p);
    const bool exact = !absl::StrContains(p, "**") && !absl::StartsWith(p, "${");
    if (exact && per_dir[d] >= kCollapseMin && Collapsible(d, writes)) {
      out.insert(d + "/**");
    } else {
      out.insert(p);
    }
  }
  std::set<std::string> pruned;
  for (const auto& p : out) {
    if (std::none_of(out.begin(), out.end(),
                     [&](const auto& q) { return q != p && Covers(q, p); })) {
      pruned.insert(p);
    }
  }
  return pruned;
}

bool Covers(const std::string& q, const std::string& p) {
  if (q == p) return true;
  if (!absl::EndsWith(q, "/**")) return false;
  const std::string dir = q.substr(0, q.size() - 3);
  if (!absl::StrContains(dir, "*")) return Under(p, dir);
  // p's own * stand for whole segments: a glob matching them literally matches what they match.
  auto g = Glob::ParsePath(q);
  return g.ok() && g->Match(p);
}

std::vector<Param> ParamsFrom(const std::map<std::string, std::string>& task_params,
                              const std::vector<std::string>& command,
                              const std::set<std::string>& observed) {
  std::vector<Param> out;
  auto used = [&](const std::string& v, bool* dir) {
    struct stat st;
    const bool is_dir = stat(v.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    bool below = false, same = false;
    for (auto it = observed.lower_bound(v); it != observed.end() && absl::StartsWith(*it, v);
         ++it) {
      same |= *it == v;
      below |= Under(*it, v) && *it != v;
    }
    *dir = is_dir || below;
    return below || same;
  };
  auto eligible = [&](const std::string& v) {
    if (v.empty() || IsSystemPath(v) || !PackageRoot(v + "/x").empty() || SecretOf(v)) return false;
    for (const char* n : kNeverCollapse) {
      if (v == n) return false;
    }
    for (const char* t : kTempRoots) {
      if (v == t) return false;
    }
    return std::none_of(out.begin(), out.end(), [&](const Param& p) { return p.value == v; });
  };
  for (const auto& [k, raw] : task_params) {
    std::string v = NormalPath(raw);
    bool dir = false;
    if (eligible(v) && used(v, &dir)) out.push_back({k, v, dir});
  }
  // argv[0] is the program itself (an exec rule), not a parameter.
  for (size_t i = 1; i < command.size(); ++i) {
    for (const auto& raw : PathsIn(command[i])) {
      std::string v = NormalPath(raw);
      bool dir = false;
      if (!eligible(v) || !used(v, &dir)) continue;
      std::string base = v.substr(v.rfind('/') + 1);
      out.push_back({ParamName(base, dir, out), v, dir});
    }
  }
  return out;
}

}  // namespace writ::intent::suggest
