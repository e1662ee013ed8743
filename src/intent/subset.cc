// Sub-agent subset check: a child task's compiled intent may allow nothing its parent's does not.
//
// The check is conservative by design: it proves coverage pattern by pattern (a child pattern must
// be contained in ONE parent pattern; a parent restriction must be repeated by the child or
// provably irrelevant to everything the child allows). Whatever it cannot prove is refused, naming
// the child permission that would escalate, because a false refusal costs a narrower intent while a
// false acceptance hands a sub-agent authority its principal never granted.
#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "intent/intent.h"
#include "intent/tools.h"

namespace writ::intent {
namespace {

// `a` equals `b` or lies below it ("" is the root, containing everything).
bool Under(absl::string_view a, absl::string_view b) {
  if (b.empty()) return true;
  return a == b || (absl::StartsWith(a, b) && a.size() > b.size() && a[b.size()] == '/');
}

// The literal directory every match of `g` lies in (or equals, for exact patterns): the leading
// segments without wildcards. "" when the pattern starts with a wildcard ("**/.env" can be
// anywhere).
std::string LiteralDir(const Glob& g) {
  if (g.kind() != Glob::Kind::kGeneral) return g.literal();
  const std::string& p = g.pattern();
  size_t wild = p.find_first_of("*?");
  size_t slash = p.rfind('/', wild);
  if (slash == std::string::npos) return "";
  return p.substr(0, slash);
}

// Every path matched by `inner` is matched by `outer`.
bool Covers(const Glob& outer, const Glob& inner) {
  if (outer.pattern() == inner.pattern()) return true;
  if (inner.kind() == Glob::Kind::kExact) return outer.Match(inner.literal());
  if (outer.kind() == Glob::Kind::kPrefix) {
    if (inner.kind() == Glob::Kind::kPrefix) return Under(inner.literal(), outer.literal());
    // A general pattern "/a/b/*.c" only matches paths strictly below its literal directory.
    const std::string dir = LiteralDir(inner);
    return !absl::StartsWith(inner.pattern(), "**") && Under(dir, outer.literal());
  }
  return false;  // general outer patterns: containment is not decidable cheaply; refuse
}

// No path is matched by both.
bool Disjoint(const Glob& a, const Glob& b) {
  if (a.kind() == Glob::Kind::kExact) return !b.Match(a.literal());
  if (b.kind() == Glob::Kind::kExact) return !a.Match(b.literal());
  if (absl::StartsWith(a.pattern(), "**") || absl::StartsWith(b.pattern(), "**")) return false;
  const std::string da = LiteralDir(a), db = LiteralDir(b);
  return !Under(da, db) && !Under(db, da);
}

// CIDR + port range containment / overlap.
bool NetCovers(const NetEntry& outer, const NetEntry& inner) {
  if (outer.family != inner.family || outer.prefix_len > inner.prefix_len) return false;
  if (inner.port_lo < outer.port_lo || inner.port_hi > outer.port_hi) return false;
  const int full = outer.prefix_len / 8, bits = outer.prefix_len % 8;
  if (std::memcmp(outer.addr, inner.addr, full) != 0) return false;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (outer.addr[full] & mask) == (inner.addr[full] & mask);
}
bool NetOverlaps(const NetEntry& a, const NetEntry& b) {
  if (a.family != b.family || a.port_hi < b.port_lo || b.port_hi < a.port_lo) return false;
  NetEntry wider = a.prefix_len <= b.prefix_len ? a : b;
  NetEntry narrower = a.prefix_len <= b.prefix_len ? b : a;
  wider.port_lo = 0;
  wider.port_hi = 65535;
  return NetCovers(wider, narrower);
}

int ModeRank(absl::string_view m) {
  if (m == "record") return 0;
  if (m == "monitor") return 1;
  if (m == "enforce") return 2;
  return -1;  // "": the daemon's mode
}

}  // namespace

// Friend of CompiledIntent: reads the compiled tables directly (the rule list alone does not say
// whether an allow list is present but empty).
class SubsetChecker {
 public:
  SubsetChecker(const CompiledIntent& child, const CompiledIntent& parent)
      : c_(child), p_(parent) {}

  absl::Status Run() {
    // Permissions first: they are what a user widening a child intent most likely got wrong.
    if (auto st = Exec(); !st.ok()) return st;
    if (auto st = Files(); !st.ok()) return st;
    if (auto st = Network(); !st.ok()) return st;
    if (auto st = Unix(); !st.ok()) return st;
    if (auto st = Limits(); !st.ok()) return st;
    if (auto st = Mode(); !st.ok()) return st;
    if (auto st = Root(); !st.ok()) return st;
    if (auto st = Credentials(); !st.ok()) return st;
    return Responses();
  }

  // A sub-agent may only ask for providers its parent's intent has, and (postgres) for no grant the
  // parent's request lacks; a parent request without grants uses the provider's defaults, which the
  // child then may only ask for by leaving grants out too.
  absl::Status Credentials() const {
    for (const auto& cc : c_.credentials()) {
      const writ::v1::CredentialRequest* pc = nullptr;
      for (const auto& cand : p_.credentials()) {
        if (cand.provider() == cc.provider()) pc = &cand;
      }
      if (pc == nullptr)
        return Refuse(absl::StrCat("credentials from provider \"", cc.provider(), "\""));
      for (const auto& g : cc.grants()) {
        if (std::find(pc->grants().begin(), pc->grants().end(), g) == pc->grants().end()) {
          return Refuse(absl::StrCat("credentials[", cc.provider(), "] grant \"", g, "\""));
        }
      }
      if (cc.grants().empty() && !pc->grants().empty()) {
        return Refuse(absl::StrCat("credentials from \"", cc.provider(),
                                   "\" with the provider's default grants"));
      }
    }
    return absl::OkStatus();
  }

 private:
  struct Pat {
    std::string field;  // "exec.allow" (no index): what the message names
    Glob glob;
  };

  // Patterns of one list, re-parsed from the compiled rules (patterns after parameter
  // substitution).
  static std::vector<Pat> List(const CompiledIntent& ci, absl::string_view field) {
    std::vector<Pat> out;
    const std::string prefix = absl::StrCat(ci.name(), "/", field, "[");
    for (const Rule& r : ci.rules()) {
      if (!absl::StartsWith(r.id, prefix)) continue;
      auto g = Glob::ParsePath(r.pattern);
      if (g.ok()) out.push_back(Pat{std::string(field), *std::move(g)});
    }
    return out;
  }

  absl::Status Refuse(absl::string_view what) const {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " is not allowed by parent intent ", p_.name()));
  }

  absl::Status Mode() const {
    const int pr = ModeRank(p_.mode()), cr = ModeRank(c_.mode());
    if (pr >= 0 && cr < pr) {
      return Refuse(absl::StrCat("mode ", c_.mode().empty() ? "(daemon default)" : c_.mode()));
    }
    if (pr < 0 && cr >= 0 && cr < 2) return Refuse(absl::StrCat("mode ", c_.mode()));
    return absl::OkStatus();
  }

  absl::Status Root() const {
    if (c_.run_as_root() && !p_.run_as_root()) return Refuse("run_as_root");
    return absl::OkStatus();
  }

  absl::Status Responses() const {
    for (const std::string& r : p_.responses()) {
      bool has = std::find(c_.responses().begin(), c_.responses().end(), r) != c_.responses().end();
      // Killing contains at least as much as freezing does.
      if (!has && r == "freeze") {
        has =
            std::find(c_.responses().begin(), c_.responses().end(), "kill") != c_.responses().end();
      }
      if (!has) return Refuse(absl::StrCat("on_violation without ", r));
    }
    return absl::OkStatus();
  }

  // A parent's deny pattern must stay denied for the child: repeated (covered by a child deny) or
  // unreachable because the child's allow list (and approvals) provably never match it.
  bool StillDenied(const Glob& d, const std::vector<Pat>& child_deny, bool child_allow_present,
                   const std::vector<const std::vector<Pat>*>& child_allows) const {
    for (const Pat& cd : child_deny) {
      if (Covers(cd.glob, d)) return true;
    }
    if (!child_allow_present) return false;
    for (const auto* l : child_allows) {
      for (const Pat& a : *l) {
        if (!Disjoint(a.glob, d)) return false;
      }
    }
    return true;
  }

  absl::Status Exec() const {
    const bool p_judged = p_.exec_judged_ || !p_.approvals_.empty();
    if (!p_judged) return absl::OkStatus();
    const bool c_allow_present = c_.exec_judged_ && c_.exec_allow_.present();
    if (p_.exec_judged_ && !c_.exec_judged_) return Refuse("exec (any program: no exec section)");
    std::vector<Pat> c_allow = List(c_, "exec.allow"), c_deny = List(c_, "exec.deny");
    std::vector<Pat> p_allow = List(p_, "exec.allow"), p_deny = List(p_, "exec.deny");
    std::vector<Pat> c_appr;
    for (const auto& a : c_.approvals_) c_appr.push_back(Pat{"approval", a.exe});

    if (p_.exec_judged_ && p_.exec_allow_.present()) {
      if (!c_allow_present) return Refuse("exec (any program not denied: no exec.allow list)");
      for (const auto* l : {&c_allow, &c_appr}) {
        for (const Pat& a : *l) {
          bool ok = std::any_of(p_allow.begin(), p_allow.end(),
                                [&](const Pat& q) { return Covers(q.glob, a.glob); });
          if (!ok && l == &c_appr) {
            ok = std::any_of(p_.approvals_.begin(), p_.approvals_.end(),
                             [&](const auto& q) { return Covers(q.exe, a.glob); });
          }
          if (!ok) return Refuse(absl::StrCat(a.field, " ", a.glob.pattern()));
        }
      }
    }
    for (const Pat& d : p_deny) {
      if (!StillDenied(d.glob, c_deny, c_allow_present, {&c_allow, &c_appr})) {
        return Refuse(absl::StrCat("exec of ", d.glob.pattern(), " (parent exec.deny)"));
      }
    }
    // A parent's step-up approval must survive: the child repeats it (the same program, subcommand
    // and argument patterns), asks for every invocation of programs covering it, or never allows
    // that program.
    for (const auto& pa : p_.approvals_) {
      const std::string& shown = p_.rules_[pa.rule].pattern;
      auto same_args = [](const auto& a, const auto& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                          [](const Glob& x, const Glob& y) { return x.pattern() == y.pattern(); });
      };
      bool ok = std::any_of(c_.approvals_.begin(), c_.approvals_.end(), [&](const auto& ca) {
        if (ca.any_invocation()) return Covers(ca.exe, pa.exe);
        // `subcommand: push` asks for every argv whose argv[1] is push, so it keeps `args: [push,
        // ...]`.
        if (ca.has_subcommand && !ca.args_present && !pa.has_subcommand && !pa.args.empty() &&
            pa.args[0].kind() == Glob::Kind::kExact &&
            !absl::StartsWith(pa.args[0].literal(), "-") &&
            ca.subcommand.Match(pa.args[0].literal())) {
          return Covers(ca.exe, pa.exe);
        }
        return ca.exe.pattern() == pa.exe.pattern() && ca.has_subcommand == pa.has_subcommand &&
               ca.subcommand.pattern() == pa.subcommand.pattern() &&
               ca.args_present == pa.args_present && same_args(ca.args, pa.args);
      });
      if (!ok && c_allow_present) {
        ok = std::all_of(c_allow.begin(), c_allow.end(),
                         [&](const Pat& a) { return Disjoint(a.glob, pa.exe); });
      }
      if (!ok) return Refuse(absl::StrCat("exec of ", shown, " without approval"));
    }
    return absl::OkStatus();
  }

  absl::Status Files() const {
    if (!p_.files_judged_) return absl::OkStatus();
    if (!c_.files_judged_) return Refuse("files (any path: no files section)");
    std::vector<Pat> c_read = List(c_, "files.read"), c_write = List(c_, "files.write"),
                     c_deny = List(c_, "files.deny");
    std::vector<Pat> p_read = List(p_, "files.read"), p_write = List(p_, "files.write"),
                     p_deny = List(p_, "files.deny");
    auto covered = [](const Glob& g, std::initializer_list<const std::vector<Pat>*> lists) {
      for (const auto* l : lists) {
        for (const Pat& q : *l) {
          if (Covers(q.glob, g)) return true;
        }
      }
      return false;
    };
    if (p_.file_write_.present()) {
      if (!c_.file_write_.present()) return Refuse("files.write (any path: no files.write list)");
      for (const Pat& w : c_write) {
        if (!covered(w.glob, {&p_write}))
          return Refuse(absl::StrCat("files.write ", w.glob.pattern()));
      }
    }
    if (p_.file_read_.present()) {
      if (!c_.file_read_.present()) return Refuse("files.read (any path: no files.read list)");
      // The child reads what it may write too (the engine lets writable paths be read).
      for (const auto* l : {&c_read, &c_write}) {
        for (const Pat& r : *l) {
          if (!covered(r.glob, {&p_read, &p_write})) {
            return Refuse(absl::StrCat(r.field, " ", r.glob.pattern()));
          }
        }
      }
    }
    const bool c_lists = c_.file_read_.present() && c_.file_write_.present();
    for (const Pat& d : p_deny) {
      if (!StillDenied(d.glob, c_deny, c_lists, {&c_read, &c_write})) {
        return Refuse(absl::StrCat("open of ", d.glob.pattern(), " (parent files.deny)"));
      }
    }
    return absl::OkStatus();
  }

  static std::string Shown(const CompiledIntent& ci, const NetEntry& e) {
    return e.rule >= 0 ? ci.rules_[e.rule].pattern : "?";
  }

  absl::Status Network() const {
    if (!p_.net_judged_) return absl::OkStatus();
    if (!c_.net_judged_) return Refuse("network (any destination: no network section)");
    if (p_.net_allow_present_) {
      if (!c_.net_allow_present_) return Refuse("network.connect (any destination: no allow list)");
      for (const NetEntry& a : c_.net_allow_) {
        bool ok = std::any_of(p_.net_allow_.begin(), p_.net_allow_.end(),
                              [&](const NetEntry& q) { return NetCovers(q, a); });
        if (!ok) return Refuse(absl::StrCat("network.connect.allow ", Shown(c_, a)));
      }
    }
    for (const NetEntry& d : p_.net_deny_) {
      bool ok = std::any_of(c_.net_deny_.begin(), c_.net_deny_.end(),
                            [&](const NetEntry& q) { return NetCovers(q, d); });
      if (!ok && c_.net_allow_present_) {
        ok = std::none_of(c_.net_allow_.begin(), c_.net_allow_.end(),
                          [&](const NetEntry& a) { return NetOverlaps(a, d); });
      }
      if (!ok)
        return Refuse(absl::StrCat("connect to ", Shown(p_, d), " (parent network.connect.deny)"));
    }
    return Names();
  }

  static bool PortsCovered(const HostRule& inner, const HostRule& outer) {
    auto all = [](const HostRule& h) {
      return h.ports.empty() ? std::vector<std::pair<uint16_t, uint16_t>>{{1, 65535}} : h.ports;
    };
    for (const auto& [lo, hi] : all(inner)) {
      bool ok = false;
      for (const auto& [olo, ohi] : all(outer)) ok = ok || (olo <= lo && hi <= ohi);
      if (!ok) return false;
    }
    return true;
  }

  // By name: a child's wildcard host rule needs a parent host rule covering its names and ports (an
  // exact name is also checked by address above); the names the child may resolve must be names the
  // parent may resolve, and what the parent's DNS policy denies stays denied.
  absl::Status Names() const {
    if (p_.net_allow_present_) {
      for (const HostRule& h : c_.host_allow_) {
        if (!h.pattern.wildcard()) continue;
        bool ok = std::any_of(p_.host_allow_.begin(), p_.host_allow_.end(), [&](const HostRule& q) {
          return h.pattern.CoveredBy(q.pattern) && PortsCovered(h, q);
        });
        if (!ok) return Refuse(absl::StrCat("network.connect.allow host ", h.pattern.text()));
      }
    }
    if (!p_.dns_judged_) return absl::OkStatus();
    if (!c_.dns_judged_) return Refuse("network.dns (any name: no DNS policy)");
    const auto& pa = p_.dns_policy_.allow();
    for (const dns::NamePattern& n : c_.dns_policy_.allow()) {
      bool ok = std::any_of(pa.begin(), pa.end(),
                            [&](const dns::NamePattern& q) { return n.CoveredBy(q); });
      if (!ok) return Refuse(absl::StrCat("network.dns.allow ", n.text()));
      for (const dns::NamePattern& d : p_.dns_policy_.deny()) {
        if (!d.CoveredBy(n) && !n.CoveredBy(d)) continue;  // disjoint
        const auto& cd = c_.dns_policy_.deny();
        bool kept = std::any_of(cd.begin(), cd.end(),
                                [&](const dns::NamePattern& x) { return d.CoveredBy(x); });
        if (!kept) return Refuse(absl::StrCat("name ", d.text(), " (parent network.connect.deny)"));
      }
    }
    return absl::OkStatus();
  }

  // Unix-socket names: path globs as files are, abstract names ("@...") compared as written (an
  // argument glob covers another only when that one is a literal it matches).
  struct UnixPat {
    std::string shown;
    bool abstract;
    Glob glob;
  };
  static std::vector<UnixPat> UnixList(const CompiledIntent& ci, absl::string_view field) {
    std::vector<UnixPat> out;
    const std::string prefix = absl::StrCat(ci.name(), "/", field, "[");
    for (const Rule& r : ci.rules()) {
      if (!absl::StartsWith(r.id, prefix)) continue;
      bool abstract = false;
      auto g = UnixMatcher::Parse(r.pattern, &abstract);
      if (g.ok()) out.push_back(UnixPat{r.pattern, abstract, *std::move(g)});
    }
    return out;
  }
  static bool UnixCovers(const UnixPat& outer, const UnixPat& inner) {
    if (outer.abstract != inner.abstract) return false;
    if (!outer.abstract) return Covers(outer.glob, inner.glob);
    return outer.shown == inner.shown || (inner.shown.find_first_of("*?") == std::string::npos &&
                                          outer.glob.Match(inner.glob.pattern()));
  }
  static bool UnixDisjoint(const UnixPat& a, const UnixPat& b) {
    if (a.abstract != b.abstract) return true;
    if (!a.abstract) return Disjoint(a.glob, b.glob);
    const bool a_lit = a.shown.find_first_of("*?") == std::string::npos;
    const bool b_lit = b.shown.find_first_of("*?") == std::string::npos;
    if (a_lit) return !b.glob.Match(a.glob.pattern());
    if (b_lit) return !a.glob.Match(b.glob.pattern());
    return false;
  }

  absl::Status Unix() const {
    if (!p_.unix_judged_) return absl::OkStatus();
    if (!c_.unix_judged_)
      return Refuse("unix sockets (any socket: no network.unix and no connect allow list)");
    const std::vector<UnixPat> c_allow = UnixList(c_, "network.unix.allow"),
                               c_deny = UnixList(c_, "network.unix.deny"),
                               p_allow = UnixList(p_, "network.unix.allow"),
                               p_deny = UnixList(p_, "network.unix.deny");
    const bool c_allow_present = c_.unix_allow_.present();
    if (p_.unix_allow_.present()) {
      if (!c_allow_present) return Refuse("network.unix (any socket not denied: no allow list)");
      for (const UnixPat& a : c_allow) {
        bool ok = std::any_of(p_allow.begin(), p_allow.end(),
                              [&](const UnixPat& q) { return UnixCovers(q, a); });
        if (!ok) return Refuse(absl::StrCat("network.unix.allow ", a.shown));
      }
    }
    for (const UnixPat& d : p_deny) {
      bool ok = std::any_of(c_deny.begin(), c_deny.end(),
                            [&](const UnixPat& q) { return UnixCovers(q, d); });
      if (!ok && c_allow_present) {
        ok = std::all_of(c_allow.begin(), c_allow.end(),
                         [&](const UnixPat& a) { return UnixDisjoint(a, d); });
      }
      if (!ok)
        return Refuse(absl::StrCat("unix connect to ", d.shown, " (parent network.unix.deny)"));
    }
    return absl::OkStatus();
  }

  absl::Status Limits() const {
    // The child's deadline is capped by the parent's when the task is created; the process count
    // and the hours are the child's own, so they must be at least as tight.
    if (p_.max_processes_ > 0 &&
        (c_.max_processes_ <= 0 || c_.max_processes_ > p_.max_processes_)) {
      return Refuse(absl::StrCat("limits.max_processes ", c_.max_processes_ > 0
                                                              ? absl::StrCat(c_.max_processes_)
                                                              : "unlimited"));
    }
    const HoursWindow& ph = p_.hours_;
    const HoursWindow& ch = c_.hours_;
    if (ph.present) {
      bool same = ch.present && ch.start_min == ph.start_min && ch.end_min == ph.end_min &&
                  ch.utc == ph.utc && (ph.utc || ch.tz.name() == ph.tz.name());
      if (!same) return Refuse("limits.hours (a different window)");
    }
    return absl::OkStatus();
  }

  const CompiledIntent& c_;
  const CompiledIntent& p_;
};

absl::Status CheckSubset(const CompiledIntent& child, const CompiledIntent& parent) {
  if (absl::Status st = SubsetChecker(child, parent).Run(); !st.ok()) return st;
  return CheckToolSubset(child.tools(), parent.tools(), parent.name());
}

}  // namespace writ::intent
