// writ::intent tools: an intent's `tools:` (MCP tool calls relayed by the launcher's gateway, `writ
// run
// --mcp`), compiled with the intent's parameters and judged per call: allow/deny by tool name
// (globs), argument constraints (a JSON pointer and a path glob, an argument glob or an enum),
// per-tool approval. docs/policy.md ("Tools"). Judged in writd, on the control thread of the
// launcher's connection; never on the kernel-event hot path.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "intent/glob.h"
#include "nlohmann/json.hpp"
#include "writ/v1/policy.pb.h"

namespace writ::intent {

class CompiledIntent;  // intent.h

struct ToolDecision {
  enum Kind { kAllow, kDeny, kNeedsApproval } kind = kAllow;
  std::string rule;    // "<intent>/tools.deny[0]", "<intent>/tools.default", ... ("" for kAllow)
  std::string reason;  // human-readable, names the tool and the value that failed
  absl::Duration timeout = absl::Minutes(5);  // kNeedsApproval: how long to wait for a decision
};
const char* ToolDecisionName(ToolDecision::Kind k);  // allow, deny, needs_approval

class ToolPolicy {
 public:
  // `rules` with ${param}s substituted from `values`; rules naming an unset optional parameter are
  // dropped (as everywhere in intents). Errors name the field ("tools.arguments[0].pointer: ...").
  // `compile_during(i)` compiles `during[i]` as an intent of its own (the intent's parameters
  // bound).
  using DuringCompiler =
      std::function<absl::StatusOr<std::shared_ptr<const CompiledIntent>>(int index)>;
  static absl::StatusOr<std::shared_ptr<const ToolPolicy>> Compile(
      const std::string& intent, const writ::v1::ToolRules& rules,
      const std::function<std::string(absl::string_view, bool*)>& subst,
      const DuringCompiler& compile_during = nullptr);

  // May the client see this tool in tools/list? (Its name is not denied, and allowed if allow: is
  // given.) A tool with argument rules or approval is shown: its calls are judged one by one.
  bool Shown(absl::string_view name) const;
  // One tools/call. `args` nullptr: the arguments were too large to be sent whole; a tool with
  // argument rules is then denied (nothing unjudged passes).
  ToolDecision Judge(absl::string_view name, const nlohmann::json* args) const;

  // The rules after substitution (sub-agent subset checks compare these).
  const writ::v1::ToolRules& rules() const { return rules_; }
  // `during:` for a call of this tool (the first entry whose glob matches), nullptr when none.
  std::shared_ptr<const CompiledIntent> During(absl::string_view name) const;
  const std::vector<std::pair<std::string, std::shared_ptr<const CompiledIntent>>>& during() const {
    return during_;
  }

 private:
  struct ArgRule {
    std::string tool;
    nlohmann::json::json_pointer pointer;
    std::string pointer_text;
    bool has_path = false;
    Glob path;
    bool has_glob = false;
    Glob glob;
    std::vector<std::string> enums;
    bool optional = false;
    std::string id;
  };
  struct Approval {
    std::string tool;
    absl::Duration timeout;
    std::string id;
  };
  std::string intent_;
  writ::v1::ToolRules rules_;
  std::vector<ArgRule> args_;
  std::vector<Approval> approvals_;
  std::vector<std::pair<std::string, std::shared_ptr<const CompiledIntent>>> during_;
};

// Loader checks of `tools:` that need no parameter values: patterns present, pointers well formed,
// each argument rule checking something, durations. `err(field, message)` per problem.
void ValidateToolRules(const writ::v1::ToolRules& rules,
                       const std::function<void(const std::string&, const std::string&)>& err);

// OK when `child` allows no tool call `parent` refuses (conservative; PermissionDenied naming what
// escalates). `child`/`parent` nullptr: the intent has no `tools:` (every tool allowed).
absl::Status CheckToolSubset(const ToolPolicy* child, const ToolPolicy* parent,
                             const std::string& parent_name);

// "/a/./b/../c" -> "/a/c" (lexical, no file system); "" for a relative path.
std::string NormalizeAbsolutePath(absl::string_view p);

}  // namespace writ::intent
