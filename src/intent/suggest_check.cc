// The proof side of writ policy suggest: replaying a whole recording against an intent as writd
// would judge it (--check), and comparing a suggestion with an intent already written (--diff).
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "intent/intent.h"

namespace writ::intent {
namespace {

std::string Describe(const writ::v1::Event& ev) {
  if (ev.kind() == "exec") return absl::StrCat("exec ", ev.process().exe());
  if (ev.kind() == "open") {
    return absl::StrCat("open ", ev.file().path(), " (",
                        ev.file().flags().empty() ? "read" : absl::StrJoin(ev.file().flags(), ","),
                        ")");
  }
  if (ev.kind() == "connect" && ev.network().family() == "unix") {
    return absl::StrCat("connect unix ", ev.network().path(),
                        ev.network().peer_path().empty() ? "" : " → " + ev.network().peer_path());
  }
  if (ev.kind() == "connect") {
    return absl::StrCat("connect ", ev.network().dst_ip(), ":", ev.network().dst_port());
  }
  return ev.kind();
}

// Evaluate as writd's pipeline does: a failed open that only an allow-list default denies accessed
// nothing and is allowed (src/daemon/pipeline.cc, Judge).
Verdict Judge(const CompiledIntent& ci, const writ::v1::Event& ev) {
  // At the time it happened: an intent's limits.hours judges the recorded run, not the replay.
  EvalContext ctx{absl::Now(), 1};
  absl::Time at;
  std::string err;
  if (!ev.time().empty() && absl::ParseTime(absl::RFC3339_full, ev.time(), &at, &err)) ctx.now = at;
  Verdict v = Evaluate(ci, ev, ctx);
  if (v.kind == Verdict::kViolation && ev.kind() == "open" && ev.file().result() < 0 &&
      absl::EndsWith(v.rule->id, ".default")) {
    return Verdict{Verdict::kAllow, nullptr};
  }
  // The same for a unix socket the connect did not reach (glibc probing nscd): writd reports it
  // without a verdict.
  const auto& n = ev.network();
  if (v.kind == Verdict::kViolation && ev.kind() == "connect" && n.family() == "unix" &&
      absl::EndsWith(v.rule->id, ".default") && n.result() != 0 && n.peer_path().empty()) {
    return Verdict{Verdict::kNotJudged, nullptr};
  }
  return v;
}

}  // namespace

Replay ReplayEvents(const CompiledIntent& ci, const std::vector<writ::v1::Event>& events) {
  Replay r;
  std::map<std::string, size_t> index;  // line key → position in order
  std::vector<std::pair<std::string, int>> order;
  for (const auto& ev : events) {
    Verdict v = Judge(ci, ev);  // every kind the engine judges, the ones to come included
    if (v.kind == Verdict::kNotJudged) continue;
    ++r.judged;
    if (v.kind == Verdict::kAllow && v.rule) r.used_rules.insert(v.rule->id);
    if (v.kind != Verdict::kViolation && v.kind != Verdict::kNeedsApproval) continue;
    ++r.violations;
    std::string key = absl::StrCat(Describe(ev), ": ", VerdictName(v.kind), " by ", v.rule->id,
                                   " (", v.rule->reason, ")");
    auto [it, fresh] = index.emplace(key, order.size());
    if (fresh) order.emplace_back(key, 0);
    ++order[it->second].second;
  }
  for (const auto& [key, n] : order) {
    r.lines.push_back(n > 1 ? absl::StrCat(key, " (", n, " events)") : key);
  }
  return r;
}

std::string DiffIntent(const CompiledIntent& suggested, const CompiledIntent& existing,
                       const std::vector<writ::v1::Event>& events, bool* subset) {
  std::string out;
  Replay mine = ReplayEvents(suggested, events);
  Replay theirs = ReplayEvents(existing, events);
  absl::StrAppend(&out, "# ", existing.name(), " against the recording: ", theirs.judged,
                  " events judged, ", theirs.violations, " denied\n");
  for (const auto& l : theirs.lines) absl::StrAppend(&out, "lacks: ", l, "\n");
  // Allow rules of the existing intent that no recorded event used: what it allows beyond what
  // was observed (deny rules and defaults are not grants).
  int beyond = 0;
  for (const Rule& rule : existing.rules()) {
    const bool grant = absl::StrContains(rule.id, ".allow[") ||
                       absl::StrContains(rule.id, ".read[") ||
                       absl::StrContains(rule.id, ".write[");
    if (!grant || theirs.used_rules.contains(rule.id)) continue;
    ++beyond;
    absl::StrAppend(&out, "beyond: ", rule.id, " ", rule.pattern, " (no recorded event used it)\n");
  }
  if (theirs.violations == 0 && beyond == 0) {
    absl::StrAppend(&out, "# ", existing.name(), " allows exactly the rules the recording used\n");
  }
  absl::Status st = CheckSubset(suggested, existing);
  *subset = st.ok();
  if (st.ok()) {
    absl::StrAppend(&out, "subset: yes: the suggestion allows nothing ", existing.name(),
                    " does not\n");
  } else {
    absl::StrAppend(&out, "subset: no: ", st.message(), "\n");
  }
  absl::StrAppend(&out, "# the suggestion against the recording: ", mine.judged, " events judged, ",
                  mine.violations, " denied\n");
  return out;
}

}  // namespace writ::intent
