// Runs the `tests:` embedded in intent files (writ policy test): each test is one event and the
// verdict it must get, so a policy change that breaks an expectation is caught before it is
// deployed.
#include "absl/strings/str_cat.h"
#include "intent/intent.h"
#include "intent/tools.h"

namespace writ::intent {
namespace {

// Tests without an explicit `event.time` run at noon UTC, inside any sane working-hours window, so
// results do not depend on when the suite runs.
absl::Time DefaultTestTime() { return absl::FromUnixSeconds(1767268800); }  // 2026-01-01T12:00:00Z

absl::flat_hash_map<std::string, std::string> TestParams(const writ::v1::Intent& in,
                                                         const writ::v1::IntentTest& t) {
  absl::flat_hash_map<std::string, std::string> p(t.params().begin(), t.params().end());
  for (const auto& [name, spec] : in.params()) {
    if (p.contains(name) || !spec.required()) continue;
    if (spec.type() == "path") {
      p[name] = absl::StrCat("/tmp/writ-test-", name);
    } else if (spec.type() == "int") {
      p[name] = "0";
    } else if (spec.type() == "bool") {
      p[name] = "false";
    } else {
      p[name] = absl::StrCat("writ-test-", name);
    }
  }
  return p;
}

}  // namespace

TestSummary RunPolicyTests(const PolicySet& set, std::ostream& out) {
  TestSummary sum;
  for (const auto& in : set.intents()) {
    for (int i = 0; i < in.tests_size(); ++i) {
      const auto& t = in.tests(i);
      const std::string field = absl::StrCat("tests[", i, "]");
      const std::string where =
          absl::StrCat(in.source().file(), ":", set.LineOf(in.name(), field), ": ", in.name(), "/",
                       field, t.name().empty() ? "" : absl::StrCat(" (", t.name(), ")"), ": ");
      auto ci = Compile(in, TestParams(in, t), {.bind_file_ids = false});
      if (!ci.ok()) {
        ++sum.failed;
        out << where << "cannot compile: " << ci.status().message() << "\n";
        continue;
      }
      EvalContext ctx{DefaultTestTime(), t.live_processes() > 0 ? t.live_processes() : 1};
      if (!t.event().time().empty()) {
        std::string err;
        absl::ParseTime(absl::RFC3339_full, t.event().time(), &ctx.now,
                        &err);  // validated by the loader
      }
      std::string got, got_rule, got_reason;
      if (t.event().kind() == "tool_call") {
        // An MCP tools/call through the gateway: tool.name and tool.arguments (JSON text).
        got = "not_judged";
        if (const ToolPolicy* tp = (*ci)->tools()) {
          const std::string& text = t.event().tool().arguments();
          nlohmann::json args = nlohmann::json::parse(text.empty() ? "{}" : text, nullptr, false);
          if (args.is_discarded()) {
            ++sum.failed;
            out << where << "event.tool.arguments is not JSON\n";
            continue;
          }
          ToolDecision d = tp->Judge(t.event().tool().name(), &args);
          got = d.kind == ToolDecision::kAllow  ? "allow"
                : d.kind == ToolDecision::kDeny ? "violation"
                                                : "needs_approval";
          got_rule = d.rule;
          got_reason = d.reason;
        }
      } else {
        Verdict v = Evaluate(**ci, t.event(), ctx);
        got = VerdictName(v.kind);
        if (v.rule) {
          got_rule = v.rule->id;
          got_reason = v.rule->reason;
        }
      }
      bool ok = got == t.expect();
      if (ok && !t.rule().empty()) {
        ok = got_rule == t.rule() || got_rule == absl::StrCat(in.name(), "/", t.rule());
      }
      if (ok) {
        ++sum.passed;
        continue;
      }
      ++sum.failed;
      out << where << "expected " << t.expect();
      if (!t.rule().empty()) out << " by " << t.rule();
      out << ", got " << got;
      if (!got_rule.empty()) out << " by " << got_rule << " (" << got_reason << ")";
      out << "\n";
    }
  }
  out << sum.passed << " passed, " << sum.failed << " failed\n";
  return sum;
}

}  // namespace writ::intent
