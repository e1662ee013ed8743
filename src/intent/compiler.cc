// Compiler: Intent + bound params → CompiledIntent (flat tables; see intent.h).
#include <arpa/inet.h>
#include <linux/magic.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "intent/intent.h"
#include "intent/parse_util.h"
#include "intent/tools.h"
#include "util/status_macros.h"

namespace writ::intent {

const char* CategoryName(Category c) {
  switch (c) {
    case Category::kExec:
      return "exec";
    case Category::kFile:
      return "file";
    case Category::kNetwork:
      return "network";
    case Category::kLimits:
      return "limits";
    case Category::kApproval:
      return "approval";
  }
  return "unknown";
}

const Rule* CompiledIntent::FindRule(absl::string_view id) const {
  for (const Rule& r : rules_) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

absl::Duration CompiledIntent::approval_timeout(const Rule* r) const {
  for (const Approval& a : approvals_) {
    if (&rules_[a.rule] == r) return a.timeout;
  }
  return absl::ZeroDuration();
}

KernelTables CompiledIntent::kernel_tables() const {
  KernelTables t;
  t.exec_default_deny = exec_judged_ && exec_allow_.present();
  t.exec_allow_exact = exec_allow_.ExactPaths();
  t.exec_deny_exact = exec_deny_.ExactPaths();
  t.exec_has_globs = exec_allow_.has_general() || !exec_allow_.Prefixes().empty() ||
                     exec_deny_.has_general() || !exec_deny_.Prefixes().empty();
  t.exec_script_judged = (exec_judged_ && exec_deny_.size() > 0) || !approvals_.empty();
  t.exec_any_judged = exec_judged_ || !approvals_.empty();
  for (const Approval& a : approvals_) {
    if (a.exe.kind() == Glob::Kind::kExact) t.exec_approval_exact.push_back(a.exe.literal());
    // An exact program is in the table as APPROVAL: the kernel stops each of its execs before the
    // first instruction and userspace judges the argv. A program glob only userspace can match;
    // argument patterns send every exec there too (conservative, as before).
    if (a.exe.kind() != Glob::Kind::kExact || !a.any_invocation()) t.exec_has_globs = true;
  }
  // An exact exec.allow path a program-glob approval matches ("/usr/**/git" and /usr/bin/git) must
  // not reach the table as ALLOW, or the kernel would let it run before writd judged its argv: it
  // is an approval path too (APPROVAL overrides ALLOW in the table).
  for (const std::string& p : t.exec_allow_exact) {
    for (const Approval& a : approvals_) {
      if (a.exe.kind() != Glob::Kind::kExact && a.exe.Match(p)) {
        t.exec_approval_exact.push_back(p);
        break;
      }
    }
  }
  // Approval rules judge execs without an exec: category too: the kernel must then stop what its
  // table cannot decide (WRIT_TASK_EXEC_USER is set from exec_judged && exec_has_globs), or a
  // program a glob approval names would run before writd asked.
  t.exec_judged = exec_judged_ || !approvals_.empty();
  t.net_judged = net_judged_;
  t.net_default_deny = net_judged_ && net_allow_present_;
  auto add = [&](const std::vector<NetEntry>& v, bool deny) {
    for (const NetEntry& e : v) {
      KernelNetRule k;
      k.family = e.family;
      std::memcpy(k.addr, e.addr, sizeof(k.addr));
      k.prefix_len = e.prefix_len;
      k.port_lo = e.port_lo;
      k.port_hi = e.port_hi;
      k.deny = deny;
      t.net_rules.push_back(k);
    }
  };
  add(net_deny_, true);
  add(net_allow_, false);
  t.file_deny_exact = file_deny_.ExactPaths();
  t.file_deny_prefix = file_deny_.Prefixes();
  // Component rules go to the kernel only because a files.deny match is final in this engine
  // (Engine::Open checks files.deny before files.read/write, and nothing overrides a deny): a
  // kernel kill on "**/.ssh/**" is a violation userspace would report for the same path. Other
  // globs stay in userspace.
  t.file_deny_leaf = file_deny_.Components(Glob::ComponentRule::kLeaf);
  t.file_deny_any_component = file_deny_.Components(Glob::ComponentRule::kAnyComponent);
  t.file_deny_has_globs = file_deny_.has_non_component_globs();
  t.file_deny_any = files_judged_ && file_deny_.size() > 0;
  t.unix_judged = unix_judged_;
  t.unix_default_deny = unix_judged_ && unix_allow_.present();
  auto unix_kernel = [&t](const UnixMatcher& m, std::vector<std::string>* exact,
                          std::vector<std::string>* prefix) {
    for (const auto& [path, rule] : m.paths().exact_entries()) exact->push_back(path);
    for (const auto& [dir, rule] : m.paths().prefix_entries()) {
      if (dir.empty()) {
        t.unix_has_globs = true;  // "/**": every path name, a lookup the kernel does not make
      } else {
        prefix->push_back(dir);
      }
    }
    if (m.paths().has_general()) t.unix_has_globs = true;
    for (const auto& [g, rule] : m.abstract()) {
      if (g.pattern().find_first_of("*?") == std::string::npos) {
        exact->push_back("@" + g.pattern());
      } else {
        t.unix_has_globs = true;
      }
    }
    std::sort(exact->begin(), exact->end());
    std::sort(prefix->begin(), prefix->end());
  };
  unix_kernel(unix_allow_, &t.unix_allow_exact, &t.unix_allow_prefix);
  unix_kernel(unix_deny_, &t.unix_deny_exact, &t.unix_deny_prefix);
  for (const auto& [id, rule] : file_deny_ids_) t.file_deny_ids.push_back(id);
  std::sort(t.file_deny_ids.begin(), t.file_deny_ids.end());
  return t;
}

class Compiler {
 public:
  Compiler(const writ::v1::Intent& in, const absl::flat_hash_map<std::string, std::string>& params,
           const CompileOptions& options)
      : in_(in), given_(params), options_(options), ci_(std::make_shared<CompiledIntent>()) {}

  absl::StatusOr<std::shared_ptr<const CompiledIntent>> Run() {
    RETURN_IF_ERROR(BindParams());
    ci_->name_ = in_.name();
    ci_->mode_ = in_.mode();
    ci_->run_as_root_ = in_.run_as_root();
    ci_->severity_ = in_.severity().empty() ? "high" : in_.severity();
    ci_->frameworks_.assign(in_.frameworks().begin(), in_.frameworks().end());
    ci_->responses_.assign(in_.on_violation().begin(), in_.on_violation().end());
    if (ci_->responses_.empty()) ci_->responses_.push_back("alert");
    ci_->credentials_.assign(in_.credentials().begin(), in_.credentials().end());
    // Reserve so no push_back moves rules after indices are handed out (pointers are taken later
    // anyway; this just avoids churn).
    ci_->rules_.reserve(64);

    if (in_.has_exec()) {
      const auto& e = in_.exec();
      ci_->exec_judged_ = true;
      ci_->exec_allow_.set_present(e.allow_present());
      ci_->exec_deny_.set_present(true);
      RETURN_IF_ERROR(
          Paths("exec.allow", e.allow(), Category::kExec, "exec allowed by", &ci_->exec_allow_));
      RETURN_IF_ERROR(Paths("exec.deny", e.deny(), Category::kExec, "exec of a program denied by",
                            &ci_->exec_deny_));
      ci_->exec_default_rule_ =
          AddRule("exec.default", Category::kExec, "exec of a program not in exec.allow", "");
    }
    if (in_.has_exec() || in_.approval_size() > 0) {
      ci_->exec_unresolved_rule_ = AddRule(
          "exec.unresolved", Category::kExec,
          "exec of a program writ could not resolve whole (a path deeper than 48 components or "
          "longer than 4096 bytes, or a program the dynamic loader was asked to find by itself): "
          "never allowed by exec rules",
          "");
    }
    for (int i = 0; i < in_.approval_size(); ++i) {
      const auto& a = in_.approval(i);
      const std::string field = absl::StrCat("approval[", i, "]");
      bool unset = false;
      std::string exe = SubstituteParams(a.exec(), values_, &unset);
      CompiledIntent::Approval ap;
      std::vector<std::string> args;
      for (const auto& arg : a.args()) args.push_back(SubstituteParams(arg, values_, &unset));
      const std::string sub = SubstituteParams(a.subcommand(), values_, &unset);
      if (unset) continue;
      auto g = Glob::ParsePath(exe);
      if (!g.ok()) return FieldError(field + ".exec", g.status().message());
      ap.exe = *std::move(g);
      // Proto3 has no presence for a repeated field: the loader sets args_present. A message built
      // by hand (tests, the API) that lists arguments means them.
      ap.args_present = a.args_present() || !args.empty();
      for (const auto& arg : args) ap.args.push_back(Glob::ParseArg(arg));
      if (!sub.empty()) {
        if (sub == "**")
          return FieldError(
              field + ".subcommand",
              "\"**\" is not a subcommand (leave subcommand out to ask for every invocation)");
        ap.has_subcommand = true;
        ap.subcommand = Glob::ParseArg(sub);
      }
      ap.timeout = absl::Minutes(5);
      if (!a.timeout().empty()) {
        auto d = ParseDurationStrict(SubstituteParams(a.timeout(), values_, &unset));
        if (!d.ok()) return FieldError(field + ".timeout", d.status().message());
        ap.timeout = *d;
      }
      const std::string shown = ApprovalShown(exe, ap.args_present, args, sub);
      ap.rule = AddRule(field, Category::kApproval,
                        absl::StrCat("exec requires approval by ", field, " (", shown, ")"), shown);
      ci_->approvals_.push_back(std::move(ap));
    }

    if (in_.has_tools()) {
      // tools.during[i]: its exec/files/network compiled as an intent of their own, with this
      // intent's parameters, responses and severity; rule ids "<intent>/tools.during[i]/...".
      auto during = [this](int i) -> absl::StatusOr<std::shared_ptr<const CompiledIntent>> {
        const auto& d = in_.tools().during(i);
        writ::v1::Intent sub;
        sub.set_name(absl::StrCat(in_.name(), "/tools.during[", i, "]"));
        *sub.mutable_params() = in_.params();
        *sub.mutable_on_violation() = in_.on_violation();
        *sub.mutable_frameworks() = in_.frameworks();
        sub.set_severity(in_.severity());
        if (d.has_exec()) *sub.mutable_exec() = d.exec();
        if (d.has_files()) *sub.mutable_files() = d.files();
        if (d.has_network()) *sub.mutable_network() = d.network();
        return Compile(sub, given_, options_);
      };
      auto tp = ToolPolicy::Compile(
          in_.name(), in_.tools(),
          [this](absl::string_view s, bool* u) { return SubstituteParams(s, values_, u); }, during);
      if (!tp.ok()) return tp.status();
      ci_->tools_ = *std::move(tp);
    }

    if (in_.has_files()) {
      const auto& f = in_.files();
      ci_->files_judged_ = true;
      ci_->file_read_.set_present(f.read_present());
      ci_->file_write_.set_present(f.write_present());
      ci_->file_deny_.set_present(true);
      RETURN_IF_ERROR(Paths("files.deny", f.deny(), Category::kFile, "open of a path denied by",
                            &ci_->file_deny_));
      RETURN_IF_ERROR(
          Paths("files.read", f.read(), Category::kFile, "read allowed by", &ci_->file_read_));
      RETURN_IF_ERROR(
          Paths("files.write", f.write(), Category::kFile, "write allowed by", &ci_->file_write_));
      if (options_.bind_file_ids) BindDenyFileIds();
      ci_->read_default_rule_ = AddRule("files.read.default", Category::kFile,
                                        "read of a path not in files.read or files.write", "");
      ci_->write_default_rule_ =
          AddRule("files.write.default", Category::kFile, "write to a path not in files.write", "");
      if (ci_->file_deny_.size() > 0) {
        ci_->files_renamed_rule_ = AddRule(
            "files.deny.renamed", Category::kFile,
            "a name a file denied by files.deny was given in this task (rename or link)", "");
      }
    }

    if (in_.has_network()) {
      const auto& c = in_.network().connect();
      ci_->net_judged_ = true;
      ci_->net_allow_present_ = c.allow_present();
      RETURN_IF_ERROR(Net("network.connect.deny", c.deny(), "connect to a destination denied by",
                          &ci_->net_deny_, &ci_->host_deny_));
      RETURN_IF_ERROR(Net("network.connect.allow", c.allow(), "connect allowed by",
                          &ci_->net_allow_, &ci_->host_allow_));
      RETURN_IF_ERROR(Dns());
      ci_->net_default_rule_ = AddRule("network.connect.default", Category::kNetwork,
                                       "connect to a destination not in network.connect.allow", "");
      // Unix sockets: judged by network.unix, and by default wherever connect has an allow list (an
      // egress allow list that let any local socket through -- D-Bus, an SSH agent, a container
      // runtime -- would not be one).
      const bool has_unix = in_.network().has_unix();
      if (has_unix || c.allow_present()) {
        const auto& u = in_.network().unix();
        ci_->unix_judged_ = true;
        ci_->unix_allow_.set_present(has_unix ? u.allow_present() : true);
        ci_->unix_deny_.set_present(true);
        RETURN_IF_ERROR(UnixNames("network.unix.deny", u.deny(),
                                  "unix connect to a socket denied by", &ci_->unix_deny_));
        RETURN_IF_ERROR(UnixNames("network.unix.allow", u.allow(), "unix connect allowed by",
                                  &ci_->unix_allow_));
        ci_->unix_default_rule_ = AddRule(
            "network.unix.default", Category::kNetwork,
            has_unix ? "unix connect to a socket not in network.unix.allow"
                     : "unix connect from an intent with network.connect.allow and no network.unix "
                       "(no unix socket is allowed but writd's own)",
            "");
      }
    }

    if (in_.has_limits()) {
      const auto& l = in_.limits();
      bool unset = false;
      if (!l.ttl().empty()) {
        std::string ttl = SubstituteParams(l.ttl(), values_, &unset);
        if (!unset) {
          auto d = ParseDurationStrict(ttl);
          if (!d.ok()) return FieldError("limits.ttl", d.status().message());
          ci_->ttl_ = *d;
        }
      }
      if (!l.hours().empty()) {
        auto h = ParseHours(SubstituteParams(l.hours(), values_, &unset));
        if (!h.ok()) return FieldError("limits.hours", h.status().message());
        HoursWindow& w = ci_->hours_;
        w.present = !(h->start_min == 0 && h->end_min == 1440);  // the whole day judges nothing
        w.start_min = h->start_min;
        w.end_min = h->end_min;
        w.utc = h->tz == "UTC";
        if (!w.utc) absl::LoadTimeZone(h->tz, &w.tz);
        if (w.present) {
          ci_->hours_rule_ = AddRule(
              "limits.hours", Category::kLimits,
              absl::StrCat("event outside the allowed hours ", l.hours(), " (limits.hours)"),
              l.hours());
        }
      }
      if (l.max_processes() > 0) {
        ci_->max_processes_ = l.max_processes();
        ci_->max_processes_rule_ = AddRule(
            "limits.max_processes", Category::kLimits,
            absl::StrCat("process count above limits.max_processes (", l.max_processes(), ")"), "");
      }
    }
    return std::shared_ptr<const CompiledIntent>(std::move(ci_));
  }

 private:
  absl::Status FieldError(absl::string_view field, absl::string_view msg) {
    return absl::InvalidArgumentError(absl::StrCat("intent ", in_.name(), ": ", field, ": ", msg));
  }

  absl::Status BindParams() {
    for (const auto& [k, v] : given_) {
      auto it = in_.params().find(k);
      if (it == in_.params().end()) {
        return FieldError(absl::StrCat("params.", k),
                          "unknown parameter (not declared by the intent)");
      }
      if (auto st = CheckParamValue(it->second.type(), v); !st.ok()) {
        return FieldError(absl::StrCat("params.", k), st.message());
      }
      values_[k] = v;
    }
    std::vector<std::string> names;
    for (const auto& [k, spec] : in_.params()) names.push_back(k);
    std::sort(names.begin(), names.end());
    for (const auto& k : names) {
      const auto& spec = in_.params().at(k);
      if (values_.contains(k)) continue;
      if (spec.required())
        return FieldError(absl::StrCat("params.", k), "missing required parameter");
      if (!spec.default_().empty()) values_[k] = spec.default_();
    }
    ci_->params_ = values_;
    return absl::OkStatus();
  }

  // The files the exact and directory denies name, by identity: an exact path is stat()ed
  // (following symlinks, like the kernel's resolved path), a denied directory's regular files are
  // listed (symlinks not followed, pseudo filesystems skipped: nothing on them can be hard-linked).
  // Bounded: at most kMaxDenyFileIds files and kMaxDenyDepth levels per intent; beyond that only
  // names match.
  void BindDenyFileIds() {
    constexpr size_t kMaxDenyFileIds = 4096;
    constexpr int kMaxDenyDepth = 16;
    auto add = [&](const struct stat& st, int rule) {
      if (!S_ISREG(st.st_mode)) return;
      if (ci_->file_deny_ids_.size() >= kMaxDenyFileIds) {
        ci_->file_deny_ids_truncated_ = true;
        return;
      }
      // The kernel's s_dev is MKDEV(major, minor) = major << 20 | minor; st_dev is glibc's
      // encoding.
      const uint32_t kdev = static_cast<uint32_t>((major(st.st_dev) << 20) | minor(st.st_dev));
      ci_->file_deny_ids_.try_emplace({kdev, static_cast<uint64_t>(st.st_ino)}, rule);
    };
    for (const auto& [path, rule] : ci_->file_deny_.exact_entries()) {
      struct stat st;
      if (stat(path.c_str(), &st) == 0) add(st, rule);
    }
    for (const auto& [dir, rule] : ci_->file_deny_.prefix_entries()) {
      struct statfs fs;
      if (statfs(dir.c_str(), &fs) != 0 || fs.f_type == PROC_SUPER_MAGIC ||
          fs.f_type == SYSFS_MAGIC || fs.f_type == CGROUP2_SUPER_MAGIC ||
          fs.f_type == CGROUP_SUPER_MAGIC || fs.f_type == DEVPTS_SUPER_MAGIC ||
          fs.f_type == DEBUGFS_MAGIC || fs.f_type == TRACEFS_MAGIC || fs.f_type == BPF_FS_MAGIC) {
        continue;
      }
      std::error_code ec;
      auto it = std::filesystem::recursive_directory_iterator(
          dir, std::filesystem::directory_options::skip_permission_denied, ec);
      for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (ci_->file_deny_ids_truncated_) break;
        if (it.depth() >= kMaxDenyDepth) it.disable_recursion_pending();
        struct stat st;
        if (lstat(it->path().c_str(), &st) == 0) add(st, rule);
      }
    }
  }

  // What an approval rule asks for, as the rule's pattern and in its reason:
  // "/usr/bin/sudo, any arguments", "/usr/bin/git [options] push", "/usr/bin/git push **",
  // "/usr/bin/top, no arguments", "/usr/bin/git [options] push, nothing after it".
  static std::string ApprovalShown(const std::string& exe, bool args_present,
                                   const std::vector<std::string>& args, const std::string& sub) {
    std::string out = exe;
    if (!sub.empty()) absl::StrAppend(&out, " [options] ", sub);
    if (!args.empty()) absl::StrAppend(&out, " ", absl::StrJoin(args, " "));
    if (sub.empty() && !args_present) absl::StrAppend(&out, ", any arguments");
    if (args_present && args.empty()) {
      absl::StrAppend(&out, sub.empty() ? ", no arguments" : ", nothing after it");
    }
    return out;
  }

  int AddRule(absl::string_view field, Category cat, std::string reason, std::string pattern) {
    Rule r;
    r.id = absl::StrCat(in_.name(), "/", field);
    r.category = cat;
    r.reason = std::move(reason);
    r.pattern = std::move(pattern);
    r.severity = ci_->severity_;
    r.frameworks = ci_->frameworks_;
    r.responses = ci_->responses_;
    ci_->rules_.push_back(std::move(r));
    return static_cast<int>(ci_->rules_.size() - 1);
  }

  absl::Status Paths(absl::string_view field,
                     const google::protobuf::RepeatedPtrField<std::string>& l, Category cat,
                     absl::string_view verb, PathMatcher* m) {
    for (int i = 0; i < l.size(); ++i) {
      const std::string f = absl::StrCat(field, "[", i, "]");
      bool unset = false;
      std::string p = SubstituteParams(l.Get(i), values_, &unset);
      if (unset) continue;  // references an optional parameter that was not given: rule omitted
      auto g = Glob::ParsePath(p);
      if (!g.ok()) return FieldError(f, g.status().message());
      m->Add(*g, AddRule(f, cat, absl::StrCat(verb, " ", f, " (", p, ")"), p));
    }
    return absl::OkStatus();
  }

  // network.dns.allow, or by default the names of the connect allow rules; connect.deny names are
  // denied.
  absl::Status Dns() {
    const auto& n = in_.network();
    ci_->dns_judged_ = n.has_dns() || n.connect().allow_present();
    for (const HostRule& h : ci_->host_deny_) ci_->dns_policy_.Deny(h.pattern);
    if (!n.has_dns()) {
      for (const HostRule& h : ci_->host_allow_) ci_->dns_policy_.Allow(h.pattern);
      return absl::OkStatus();
    }
    for (int i = 0; i < n.dns().allow_size(); ++i) {
      bool unset = false;
      std::string s = SubstituteParams(n.dns().allow(i), values_, &unset);
      if (unset) continue;
      auto p = dns::NamePattern::Parse(s);
      if (!p.ok())
        return FieldError(absl::StrCat("network.dns.allow[", i, "]"), p.status().message());
      ci_->dns_policy_.Allow(*std::move(p));
    }
    return absl::OkStatus();
  }

  absl::Status UnixNames(absl::string_view field,
                         const google::protobuf::RepeatedPtrField<std::string>& l,
                         absl::string_view verb, UnixMatcher* m) {
    for (int i = 0; i < l.size(); ++i) {
      const std::string f = absl::StrCat(field, "[", i, "]");
      bool unset = false;
      std::string p = SubstituteParams(l.Get(i), values_, &unset);
      if (unset) continue;
      bool abstract = false;
      auto g = UnixMatcher::Parse(p, &abstract);
      if (!g.ok()) return FieldError(f, g.status().message());
      m->Add(*g, abstract,
             AddRule(f, Category::kNetwork, absl::StrCat(verb, " ", f, " (", p, ")"), p));
    }
    return absl::OkStatus();
  }

  absl::Status Net(absl::string_view field,
                   const google::protobuf::RepeatedPtrField<writ::v1::NetRule>& l,
                   absl::string_view verb, std::vector<NetEntry>* out,
                   std::vector<HostRule>* hosts) {
    for (int i = 0; i < l.size(); ++i) {
      const auto& r = l.Get(i);
      const std::string f = absl::StrCat(field, "[", i, "]");
      bool unset = false;
      std::vector<PortRange> ports;
      std::vector<std::string> port_text;
      for (int j = 0; j < r.ports_size(); ++j) {
        std::string ps = SubstituteParams(r.ports(j), values_, &unset);
        auto pr = ParsePortRange(ps);
        if (!unset && !pr.ok())
          return FieldError(absl::StrCat(f, ".ports[", j, "]"), pr.status().message());
        if (pr.ok()) ports.push_back(*pr);
        port_text.push_back(ps);
      }
      if (ports.empty()) ports.push_back(PortRange{1, 65535});
      std::vector<Cidr> addrs;
      std::string target;
      std::optional<HostRule> host;
      if (!r.cidr().empty()) {
        target = SubstituteParams(r.cidr(), values_, &unset);
        if (unset) continue;
        auto c = ParseCidr(target);
        if (!c.ok()) return FieldError(f + ".cidr", c.status().message());
        addrs.push_back(*c);
      } else {
        target = SubstituteParams(r.host(), values_, &unset);
        if (unset) continue;
        const bool is_ip = ParseCidr(target).ok() && target.find('/') == std::string::npos;
        if (!is_ip) {
          auto np = dns::NamePattern::Parse(target);
          if (!np.ok()) return FieldError(f + ".host", np.status().message());
          host.emplace();
          host->pattern = *std::move(np);
          for (const PortRange& p : ports) host->ports.emplace_back(p.lo, p.hi);
        }
        // A wildcard has no address to resolve: it is allowed by name only (pins, #17 phase 2).
        // A denied name that does not resolve now is still denied by name.
        if (!host || !host->pattern.wildcard()) {
          auto resolved = Resolve(target);
          const bool deny = hosts == &ci_->host_deny_;
          if (!resolved.ok() && !(deny && host))
            return FieldError(f + ".host", resolved.status().message());
          if (resolved.ok()) addrs = *std::move(resolved);
        }
      }
      if (unset) continue;
      std::string shown = port_text.empty()
                              ? target
                              : absl::StrCat(target, " ports ", absl::StrJoin(port_text, ","));
      int rule =
          AddRule(f, Category::kNetwork, absl::StrCat(verb, " ", f, " (", shown, ")"), shown);
      if (host) {
        host->rule = rule;
        hosts->push_back(*std::move(host));
      }
      for (const Cidr& c : addrs) {
        for (const PortRange& p : ports) {
          NetEntry e;
          e.family = c.family;
          std::memcpy(e.addr, c.addr, sizeof(e.addr));
          e.prefix_len = c.prefix_len;
          e.port_lo = p.lo;
          e.port_hi = p.hi;
          e.rule = rule;
          out->push_back(e);
        }
      }
    }
    return absl::OkStatus();
  }

  // Hosts are resolved once, here; the addresses at compile time are the ones enforced.
  static absl::StatusOr<std::vector<Cidr>> Resolve(const std::string& host) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot resolve \"", host, "\": ", gai_strerror(rc)));
    }
    std::vector<Cidr> out;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      Cidr c;
      c.family = a->ai_family;
      if (a->ai_family == AF_INET) {
        std::memcpy(c.addr, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, 4);
        c.prefix_len = 32;
      } else if (a->ai_family == AF_INET6) {
        std::memcpy(c.addr, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, 16);
        c.prefix_len = 128;
      } else {
        continue;
      }
      bool dup = std::any_of(out.begin(), out.end(), [&](const Cidr& o) {
        return o.family == c.family && std::memcmp(o.addr, c.addr, 16) == 0;
      });
      if (!dup) out.push_back(c);
    }
    freeaddrinfo(res);
    if (out.empty())
      return absl::UnavailableError(absl::StrCat("\"", host, "\" has no IP address"));
    return out;
  }

  const writ::v1::Intent& in_;
  const absl::flat_hash_map<std::string, std::string>& given_;
  const CompileOptions options_;
  absl::flat_hash_map<std::string, std::string> values_;
  std::shared_ptr<CompiledIntent> ci_;
};

absl::StatusOr<std::shared_ptr<const CompiledIntent>> Compile(
    const writ::v1::Intent& intent, const absl::flat_hash_map<std::string, std::string>& params,
    const CompileOptions& options) {
  return Compiler(intent, params, options).Run();
}

}  // namespace writ::intent
