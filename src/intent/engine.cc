// Engine: the hot path. Evaluate() reads the event in place (string_views, stack buffers), walks
// the compiled tables and returns a pointer to a rule owned by the CompiledIntent: no allocation,
// no lock.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "intent/intent.h"

namespace writ::intent {

const char* VerdictName(Verdict::Kind k) {
  switch (k) {
    case Verdict::kAllow:
      return "allow";
    case Verdict::kViolation:
      return "violation";
    case Verdict::kNeedsApproval:
      return "needs_approval";
    case Verdict::kNotJudged:
      return "not_judged";
  }
  return "unknown";
}

struct Engine {
  static const Rule* R(const CompiledIntent& ci, int i) { return i < 0 ? nullptr : &ci.rules_[i]; }
  static Verdict V(const CompiledIntent& ci, Verdict::Kind k, int i) {
    return Verdict{k, R(ci, i)};
  }

  static bool InHours(const HoursWindow& w, absl::Time now) {
    int minute;
    if (w.utc) {
      int64_t s = absl::ToUnixSeconds(now) % 86400;
      if (s < 0) s += 86400;
      minute = static_cast<int>(s / 60);
    } else {
      absl::CivilMinute cm = absl::ToCivilMinute(now, w.tz);
      minute = cm.hour() * 60 + cm.minute();
    }
    if (w.start_min < w.end_min) return minute >= w.start_min && minute < w.end_min;
    return minute >= w.start_min || minute < w.end_min;  // window wraps midnight
  }

  // Limits shared by every judged kind; -1 when they pass.
  static int Limits(const CompiledIntent& ci, const EvalContext& ctx, bool counts_processes) {
    if (ci.hours_.present && !InHours(ci.hours_, ctx.now)) return ci.hours_rule_;
    if (counts_processes && ci.max_processes_ > 0 && ctx.live_processes > ci.max_processes_) {
      return ci.max_processes_rule_;
    }
    return -1;
  }

  static bool LimitsJudged(const CompiledIntent& ci, bool counts_processes) {
    return ci.hours_.present || (counts_processes && ci.max_processes_ > 0);
  }

  // binfmt_script gives the interpreter argv [interpreter, (its one optional argument), the name
  // passed to execve, the script's own arguments...]: the script's name is the first argument after
  // argv[0] equal to process.filename, or beginning with it where the kernel's copy of the name was
  // cut. 0 (the interpreter's own name) when it is not there (argv cut short).
  static int ScriptArgIndex(const writ::v1::Process& p) {
    for (int i = 1; i < p.args_size(); i++) {
      if (p.args(i) == p.filename()) return i;
    }
    for (int i = 1; i < p.args_size(); i++) {
      if (!p.filename().empty() && absl::StartsWith(p.args(i), p.filename())) return i;
    }
    return 0;
  }

  // The argument side of an approval rule; `name` is the program's own place in argv
  // (ScriptArgIndex for a script). No `args:` and no `subcommand:`: every invocation.
  static bool ApprovalArgs(const CompiledIntent::Approval& a, const writ::v1::Process& p,
                           int name) {
    if (a.has_subcommand) {
      return MatchSubcommand(a.subcommand, a.args_present ? &a.args : nullptr, p.args(), name,
                             p.args_truncated());
    }
    return !a.args_present || MatchArgs(a.args, p.args(), name, p.args_truncated());
  }

  static Verdict Exec(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx) {
    if (int r = Limits(ci, ctx, true); r >= 0) return V(ci, Verdict::kViolation, r);
    const bool judged = ci.exec_judged_ || !ci.approvals_.empty();
    if (!judged) return LimitsJudged(ci, true) ? Verdict{Verdict::kAllow, nullptr} : Verdict{};
    // What runs is not known whole (an exe path cut short, whose tail may look allowed; a program
    // the dynamic loader would look for by itself): no rule may allow it.
    if (ev.process().unresolved()) {
      Verdict v = V(ci, Verdict::kViolation, ci.exec_unresolved_rule_);
      v.by_loaded = !ev.process().loaded().empty();  // the name the loader would look up
      return v;
    }
    const std::string& exe = ev.process().exe();
    // The dynamic loader run as a program runs process.loaded: deny and approval rules judge both,
    // the allow list the program that runs (allowing the loader itself allows nothing).
    const std::string& loaded = ev.process().loaded();
    // A shebang exec runs the interpreter (exe) on the script: deny and approval rules judge both,
    // the allow list the image that runs (an allowed interpreter may run the task's own scripts).
    const std::string& script = ev.process().script();
    if (ci.exec_judged_) {
      if (int r = ci.exec_deny_.Match(exe); r >= 0) return V(ci, Verdict::kViolation, r);
      if (!script.empty()) {
        if (int r = ci.exec_deny_.Match(script); r >= 0) {
          Verdict v = V(ci, Verdict::kViolation, r);
          v.by_script = true;
          return v;
        }
      }
      if (!loaded.empty()) {
        if (int r = ci.exec_deny_.Match(loaded); r >= 0) {
          Verdict v = V(ci, Verdict::kViolation, r);
          v.by_loaded = true;
          return v;
        }
      }
    }
    for (const auto& a : ci.approvals_) {
      if (a.exe.Match(exe)) {
        if (ApprovalArgs(a, ev.process(), 0)) return V(ci, Verdict::kNeedsApproval, a.rule);
      } else if (!script.empty() && a.exe.Match(script) &&
                 ApprovalArgs(a, ev.process(), ScriptArgIndex(ev.process()))) {
        Verdict v = V(ci, Verdict::kNeedsApproval, a.rule);
        v.by_script = true;
        return v;
      } else if (!loaded.empty() && a.exe.Match(loaded)) {
        // The program's own arguments follow its name in the loader's argv.
        const int at = DynamicLoaderProgram(ev.process().args(), false).index;
        if (at > 0 && MatchArgs(a.args, ev.process().args(), at)) {
          Verdict v = V(ci, Verdict::kNeedsApproval, a.rule);
          v.by_loaded = true;
          return v;
        }
      }
    }
    if (ci.exec_judged_ && ci.exec_allow_.present()) {
      int r = ci.exec_allow_.Match(loaded.empty() ? exe : loaded);
      Verdict v =
          r >= 0 ? V(ci, Verdict::kAllow, r) : V(ci, Verdict::kViolation, ci.exec_default_rule_);
      v.by_loaded = !loaded.empty();  // the allow list judged the program the loader runs
      return v;
    }
    return Verdict{Verdict::kAllow, nullptr};
  }

  static Verdict Open(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx) {
    if (int r = Limits(ci, ctx, false); r >= 0) return V(ci, Verdict::kViolation, r);
    if (!ci.files_judged_)
      return LimitsJudged(ci, false) ? Verdict{Verdict::kAllow, nullptr} : Verdict{};
    const std::string& path = ev.file().path();
    if (int r = ci.file_deny_.Match(path); r >= 0) return V(ci, Verdict::kViolation, r);
    if (!ci.file_deny_ids_.empty() && ev.file().inode() != 0) {
      auto it = ci.file_deny_ids_.find(std::make_pair(ev.file().dev(), ev.file().inode()));
      if (it != ci.file_deny_ids_.end()) {
        Verdict v = V(ci, Verdict::kViolation, it->second);
        v.by_file_id = true;
        return v;
      }
    }
    bool want_read = ev.file().flags_size() == 0;  // O_RDONLY is 0: no flags means a read
    bool want_write = false;
    for (const std::string& f : ev.file().flags()) {
      if (f == "read") {
        want_read = true;
      } else if (f == "write" || f == "create" || f == "truncate") {
        want_write = true;
      }
    }
    int allow_rule = -1;
    if (want_write && ci.file_write_.present()) {
      allow_rule = ci.file_write_.Match(path);
      if (allow_rule < 0) return V(ci, Verdict::kViolation, ci.write_default_rule_);
    }
    if (want_read && ci.file_read_.present()) {
      int r = ci.file_read_.Match(path);
      if (r < 0 && ci.file_write_.present())
        r = allow_rule >= 0 ? allow_rule : ci.file_write_.Match(path);
      if (r < 0) return V(ci, Verdict::kViolation, ci.read_default_rule_);
      if (allow_rule < 0) allow_rule = r;
    }
    return V(ci, Verdict::kAllow, allow_rule);
  }

  static bool NetMatch(const NetEntry& e, int family, const uint8_t* addr, uint32_t port) {
    if (e.family != family || port < e.port_lo || port > e.port_hi) return false;
    const int full = e.prefix_len / 8, bits = e.prefix_len % 8;
    if (std::memcmp(e.addr, addr, full) != 0) return false;
    if (bits == 0) return true;
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
    return (e.addr[full] & mask) == (addr[full] & mask);
  }

  // A unix-socket connect or send: the name as given and the socket file reached (a symlink
  // resolved) must both pass, so an allowed name cannot be pointed at another socket.
  static Verdict Unix(const CompiledIntent& ci, const writ::v1::Network& n) {
    const std::string& name = n.path();
    const std::string& peer = n.peer_path();
    if (int r = ci.unix_deny_.Match(name); r >= 0) return V(ci, Verdict::kViolation, r);
    if (!peer.empty() && peer != name) {
      if (int r = ci.unix_deny_.Match(peer); r >= 0) {
        Verdict v = V(ci, Verdict::kViolation, r);
        v.by_second = true;
        return v;
      }
    }
    if (!ci.unix_allow_.present()) return Verdict{Verdict::kAllow, nullptr};
    const int r = ci.unix_allow_.Match(name);
    if (r < 0) return V(ci, Verdict::kViolation, ci.unix_default_rule_);
    if (!peer.empty() && peer != name && ci.unix_allow_.Match(peer) < 0) {
      Verdict v = V(ci, Verdict::kViolation, ci.unix_default_rule_);
      v.by_second = true;
      return v;
    }
    return V(ci, Verdict::kAllow, r);
  }

  static Verdict Connect(const CompiledIntent& ci, const writ::v1::Event& ev,
                         const EvalContext& ctx) {
    if (int r = Limits(ci, ctx, false); r >= 0) return V(ci, Verdict::kViolation, r);
    if (ev.network().family() == "unix") {
      if (!ci.unix_judged_)
        return LimitsJudged(ci, false) ? Verdict{Verdict::kAllow, nullptr} : Verdict{};
      return Unix(ci, ev.network());
    }
    if (!ci.net_judged_)
      return LimitsJudged(ci, false) ? Verdict{Verdict::kAllow, nullptr} : Verdict{};
    const auto& n = ev.network();
    uint8_t addr[16] = {};
    int family = 0;
    if (inet_pton(AF_INET, n.dst_ip().c_str(), addr) == 1) {
      family = AF_INET;
    } else if (inet_pton(AF_INET6, n.dst_ip().c_str(), addr) == 1) {
      family = AF_INET6;
      static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(addr, kMapped, 12) == 0) {  // ::ffff:a.b.c.d is an IPv4 connect
        std::memmove(addr, addr + 12, 4);
        std::memset(addr + 4, 0, 12);
        family = AF_INET;
      }
    }
    const uint32_t port = n.dst_port();
    if (family != 0) {
      for (const NetEntry& e : ci.net_deny_) {
        if (NetMatch(e, family, addr, port)) return V(ci, Verdict::kViolation, e.rule);
      }
    }
    if (!ci.net_allow_present_) return Verdict{Verdict::kAllow, nullptr};
    if (family != 0) {
      for (const NetEntry& e : ci.net_allow_) {
        if (NetMatch(e, family, addr, port)) return V(ci, Verdict::kAllow, e.rule);
      }
    }
    // An address the task's own DNS answer named (network.host: the pin was live at the connect,
    // which the kernel checked too): allowed by the host rule that matches the name and port.
    if (!n.host().empty()) {
      for (const HostRule& h : ci.host_deny_) {
        if (!h.pattern.Matches(n.host())) continue;
        for (const auto& [lo, hi] : h.ports) {
          if (port >= lo && port <= hi) return V(ci, Verdict::kViolation, h.rule);
        }
      }
      for (const HostRule& h : ci.host_allow_) {
        if (!h.pattern.Matches(n.host())) continue;
        for (const auto& [lo, hi] : h.ports) {
          if (port >= lo && port <= hi) return V(ci, Verdict::kAllow, h.rule);
        }
      }
    }
    // An address we cannot parse is not something an allow-list permits.
    return V(ci, Verdict::kViolation, ci.net_default_rule_);
  }

  // A rename, hard link or symlink: a denied file must not get a name no rule matches, nor a name
  // be made inside what is denied. files.deny judges both names; grants do not apply (the names are
  // not opened here).
  static Verdict Link(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx) {
    if (int r = Limits(ci, ctx, false); r >= 0) return V(ci, Verdict::kViolation, r);
    if (!ci.files_judged_ || ci.file_deny_.size() == 0) {
      return LimitsJudged(ci, false) ? Verdict{Verdict::kAllow, nullptr} : Verdict{};
    }
    if (int r = ci.file_deny_.Match(ev.file().path()); r >= 0) return V(ci, Verdict::kViolation, r);
    if (int r = ci.file_deny_.Match(ev.file().new_path()); r >= 0) {
      Verdict v = V(ci, Verdict::kViolation, r);
      v.by_second = true;
      return v;
    }
    return Verdict{Verdict::kAllow, nullptr};
  }

  static Verdict Fork(const CompiledIntent& ci, const EvalContext& ctx) {
    if (int r = Limits(ci, ctx, true); r >= 0) return V(ci, Verdict::kViolation, r);
    return LimitsJudged(ci, true) ? Verdict{Verdict::kAllow, nullptr} : Verdict{};
  }
};

Verdict Evaluate(const CompiledIntent& ci, EventKind kind, const writ::v1::Event& ev,
                 const EvalContext& ctx) {
  switch (kind) {
    case EventKind::kOpen:
      return Engine::Open(ci, ev, ctx);
    case EventKind::kExec:
      return Engine::Exec(ci, ev, ctx);
    case EventKind::kConnect:
      return Engine::Connect(ci, ev, ctx);
    case EventKind::kLink:
      return Engine::Link(ci, ev, ctx);
    case EventKind::kFork:
      return Engine::Fork(ci, ctx);
    default:
      return Verdict{};
  }
}

Verdict Evaluate(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx) {
  return Evaluate(ci, EventKindFromName(ev.kind()), ev, ctx);
}

std::string Explain(const CompiledIntent& ci, const writ::v1::Event& ev, const EvalContext& ctx) {
  Verdict v = Evaluate(ci, ev, ctx);
  std::string subject;
  const std::string& k = ev.kind();
  if (k == "exec") {
    subject = absl::StrCat("exec ", ev.process().exe());
    if (ev.process().args_size() > 0)
      absl::StrAppend(&subject, " [", absl::StrJoin(ev.process().args(), " "), "]");
  } else if (k == "open") {
    subject =
        absl::StrCat("open ", ev.file().path(), " (",
                     ev.file().flags_size() ? absl::StrJoin(ev.file().flags(), ",") : "read", ")");
  } else if (k == "connect" && ev.network().family() == "unix") {
    subject = absl::StrCat("connect unix ", ev.network().path(),
                           ev.network().peer_path().empty() ? "" : " (reaching ",
                           ev.network().peer_path(), ev.network().peer_path().empty() ? "" : ")");
  } else if (k == "connect") {
    subject = absl::StrCat(ev.network().send() ? "send to " : "connect ", ev.network().dst_ip(),
                           " port ", ev.network().dst_port());
  } else if (k == "link") {
    subject = absl::StrCat(ev.file().syscall().empty() ? "link" : ev.file().syscall(), " ",
                           ev.file().path(), " -> ", ev.file().new_path());
  } else if (k == "fork") {
    subject = absl::StrCat("fork (", ctx.live_processes, " live processes)");
  } else {
    subject = absl::StrCat(k.empty() ? "(no kind)" : k, " event");
  }
  std::string out =
      absl::StrCat("intent ", ci.name(), ": ", subject, " -> ", VerdictName(v.kind), "\n");
  if (v.rule != nullptr) {
    absl::StrAppend(&out, "  rule: ", v.rule->id, " (", CategoryName(v.rule->category), ")\n");
    absl::StrAppend(&out, "  why: ", v.rule->reason, "\n");
    if (v.kind != Verdict::kAllow) {
      absl::StrAppend(&out, "  severity: ", v.rule->severity,
                      "; responses: ", absl::StrJoin(v.rule->responses, ", "), "\n");
      if (!v.rule->frameworks.empty()) {
        absl::StrAppend(&out, "  frameworks: ", absl::StrJoin(v.rule->frameworks, ", "), "\n");
      }
    }
    if (v.kind == Verdict::kNeedsApproval) {
      absl::StrAppend(
          &out, "  approval timeout: ", absl::FormatDuration(ci.approval_timeout(v.rule)), "\n");
    }
  } else if (v.kind == Verdict::kAllow) {
    absl::StrAppend(&out,
                    "  why: no rule of this intent restricts it (the relevant list is absent)\n");
  } else {
    absl::StrAppend(&out, "  why: the intent has no rules for this kind of event\n");
  }
  return out;
}

}  // namespace writ::intent
