#include "intent/tools.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/message_differencer.h"
#include "intent/intent.h"
#include "intent/parse_util.h"

namespace writ::intent {
namespace {

bool NameMatch(absl::string_view pattern, absl::string_view name) {
  return WildMatch(pattern, name, /*star_crosses_slash=*/true);
}

bool AnyMatch(const google::protobuf::RepeatedPtrField<std::string>& patterns,
              absl::string_view name, int* index) {
  for (int i = 0; i < patterns.size(); ++i) {
    if (NameMatch(patterns.Get(i), name)) {
      *index = i;
      return true;
    }
  }
  return false;
}

// The value as an enum member is written: strings as they are, numbers and bools as JSON.
std::string EnumText(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string ValueText(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return s;
}

}  // namespace

const char* ToolDecisionName(ToolDecision::Kind k) {
  switch (k) {
    case ToolDecision::kAllow:
      return "allow";
    case ToolDecision::kDeny:
      return "deny";
    case ToolDecision::kNeedsApproval:
      return "needs_approval";
  }
  return "allow";
}

std::string NormalizeAbsolutePath(absl::string_view p) {
  if (p.empty() || p[0] != '/') return "";
  std::vector<absl::string_view> out;
  for (absl::string_view seg : absl::StrSplit(p, '/', absl::SkipEmpty())) {
    if (seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  return absl::StrCat("/", absl::StrJoin(out, "/"));
}

absl::StatusOr<std::shared_ptr<const ToolPolicy>> ToolPolicy::Compile(
    const std::string& intent, const writ::v1::ToolRules& in,
    const std::function<std::string(absl::string_view, bool*)>& subst,
    const DuringCompiler& compile_during) {
  auto p = std::make_shared<ToolPolicy>();
  p->intent_ = intent;
  auto field_error = [&](const std::string& field, absl::string_view msg) {
    return absl::InvalidArgumentError(
        absl::StrCat("intent ", intent, ": tools.", field, ": ", msg));
  };
  writ::v1::ToolRules& r = p->rules_;
  r.set_allow_present(in.allow_present() || in.allow_size() > 0);
  for (const std::string& s : in.allow()) {
    bool unset = false;
    std::string v = subst(s, &unset);
    if (!unset) r.add_allow(v);
  }
  for (const std::string& s : in.deny()) {
    bool unset = false;
    std::string v = subst(s, &unset);
    if (!unset) r.add_deny(v);
  }
  for (int i = 0; i < in.arguments_size(); ++i) {
    const auto& a = in.arguments(i);
    const std::string field = absl::StrCat("arguments[", i, "]");
    bool unset = false;
    writ::v1::ToolArgRule s;
    s.set_tool(subst(a.tool(), &unset));
    s.set_pointer(subst(a.pointer(), &unset));
    if (!a.path().empty()) s.set_path(subst(a.path(), &unset));
    if (!a.glob().empty()) s.set_glob(subst(a.glob(), &unset));
    for (const auto& e : a.enum_()) s.add_enum_(subst(e, &unset));
    s.set_optional(a.optional());
    if (unset) continue;
    ArgRule ar;
    ar.tool = s.tool();
    ar.pointer_text = s.pointer();
    try {
      ar.pointer = nlohmann::json::json_pointer(s.pointer());
    } catch (const nlohmann::json::exception& e) {
      return field_error(field + ".pointer", e.what());
    }
    if (!s.path().empty()) {
      auto g = Glob::ParsePath(s.path());
      if (!g.ok()) return field_error(field + ".path", g.status().message());
      ar.has_path = true;
      ar.path = *std::move(g);
    }
    if (!s.glob().empty()) {
      ar.has_glob = true;
      ar.glob = Glob::ParseArg(s.glob());
    }
    ar.enums.assign(s.enum_().begin(), s.enum_().end());
    ar.optional = s.optional();
    ar.id = absl::StrCat(intent, "/tools.", field);
    p->args_.push_back(std::move(ar));
    *r.add_arguments() = std::move(s);
  }
  for (int i = 0; i < in.approval_size(); ++i) {
    const auto& a = in.approval(i);
    const std::string field = absl::StrCat("approval[", i, "]");
    bool unset = false;
    Approval ap;
    ap.tool = subst(a.tool(), &unset);
    ap.timeout = absl::Minutes(5);
    if (!a.timeout().empty()) {
      auto d = ParseDurationStrict(subst(a.timeout(), &unset));
      if (!d.ok()) return field_error(field + ".timeout", d.status().message());
      ap.timeout = *d;
    }
    if (unset) continue;
    ap.id = absl::StrCat(intent, "/tools.", field);
    auto* out = r.add_approval();
    out->set_tool(ap.tool);
    out->set_timeout(a.timeout());
    p->approvals_.push_back(std::move(ap));
  }
  for (int i = 0; i < in.during_size() && compile_during; ++i) {
    bool unset = false;
    std::string tool = subst(in.during(i).tool(), &unset);
    if (unset) continue;
    auto sub = compile_during(i);
    if (!sub.ok()) return sub.status();
    p->during_.emplace_back(std::move(tool), *std::move(sub));
  }
  return std::shared_ptr<const ToolPolicy>(std::move(p));
}

std::shared_ptr<const CompiledIntent> ToolPolicy::During(absl::string_view name) const {
  for (const auto& [tool, ci] : during_) {
    if (NameMatch(tool, name)) return ci;
  }
  return nullptr;
}

bool ToolPolicy::Shown(absl::string_view name) const {
  int i = 0;
  if (AnyMatch(rules_.deny(), name, &i)) return false;
  return !rules_.allow_present() || AnyMatch(rules_.allow(), name, &i);
}

ToolDecision ToolPolicy::Judge(absl::string_view name, const nlohmann::json* args) const {
  ToolDecision d;
  int i = 0;
  if (AnyMatch(rules_.deny(), name, &i)) {
    d.kind = ToolDecision::kDeny;
    d.rule = absl::StrCat(intent_, "/tools.deny[", i, "]");
    d.reason =
        absl::StrCat("tool ", name, " is denied by tools.deny[", i, "] (", rules_.deny(i), ")");
    return d;
  }
  if (rules_.allow_present() && !AnyMatch(rules_.allow(), name, &i)) {
    d.kind = ToolDecision::kDeny;
    d.rule = absl::StrCat(intent_, "/tools.default");
    d.reason = absl::StrCat("tool ", name, " is not in tools.allow");
    return d;
  }
  for (const ArgRule& a : args_) {
    if (!NameMatch(a.tool, name)) continue;
    d.kind = ToolDecision::kDeny;
    d.rule = a.id;
    const std::string at = absl::StrCat("tool ", name, " argument ", a.pointer_text);
    if (!args) {
      d.reason = absl::StrCat("tool ", name,
                              ": arguments too large to be judged against its argument rules");
      return d;
    }
    const nlohmann::json* v = nullptr;
    try {
      if (args->contains(a.pointer)) v = &args->at(a.pointer);
    } catch (const nlohmann::json::exception&) {
      v = nullptr;  // a pointer through a non-object, an index out of range: absent
    }
    if (!v) {
      if (a.optional) continue;
      d.reason = absl::StrCat(at, " is missing (required by ", a.id, ")");
      return d;
    }
    if (a.has_path) {
      std::string norm = v->is_string() ? NormalizeAbsolutePath(v->get<std::string>()) : "";
      if (norm.empty() || !a.path.Match(norm)) {
        d.reason =
            absl::StrCat(at, " = ", ValueText(*v), " is not a path under ", a.path.pattern());
        return d;
      }
    }
    if (a.has_glob && (!v->is_string() || !a.glob.Match(v->get<std::string>()))) {
      d.reason = absl::StrCat(at, " = ", ValueText(*v), " does not match ", a.glob.pattern());
      return d;
    }
    if (!a.enums.empty()) {
      if (v->is_object() || v->is_array() || v->is_null() ||
          std::find(a.enums.begin(), a.enums.end(), EnumText(*v)) == a.enums.end()) {
        d.reason = absl::StrCat(at, " = ", ValueText(*v), " is not one of [",
                                absl::StrJoin(a.enums, ", "), "]");
        return d;
      }
    }
  }
  d = ToolDecision();
  for (const Approval& ap : approvals_) {
    if (!NameMatch(ap.tool, name)) continue;
    d.kind = ToolDecision::kNeedsApproval;
    d.rule = ap.id;
    d.reason = absl::StrCat("tool ", name, " requires approval (", ap.id, ")");
    d.timeout = ap.timeout;
    return d;
  }
  return d;
}

void ValidateToolRules(const writ::v1::ToolRules& r,
                       const std::function<void(const std::string&, const std::string&)>& err) {
  auto refs = [&](const std::string& field, const std::string& s) {
    if (auto st = ParamRefs(s); !st.ok()) err(field, std::string(st.status().message()));
  };
  auto names = [&](const char* list, const google::protobuf::RepeatedPtrField<std::string>& l) {
    for (int i = 0; i < l.size(); ++i) {
      const std::string f = absl::StrCat("tools.", list, "[", i, "]");
      if (l.Get(i).empty()) err(f, "empty tool name pattern");
      refs(f, l.Get(i));
    }
  };
  names("allow", r.allow());
  names("deny", r.deny());
  for (int i = 0; i < r.arguments_size(); ++i) {
    const auto& a = r.arguments(i);
    const std::string f = absl::StrCat("tools.arguments[", i, "]");
    if (a.tool().empty()) err(f + ".tool", "missing: the tool name pattern the rule applies to");
    if (a.pointer().empty()) {
      err(f + ".pointer", "missing: a JSON pointer into the arguments, e.g. /path");
    } else if (a.pointer()[0] != '/') {
      err(f + ".pointer", "a JSON pointer starts with '/' (RFC 6901), e.g. /path");
    } else {
      try {
        (void)nlohmann::json::json_pointer(a.pointer());
      } catch (const nlohmann::json::exception& e) {
        err(f + ".pointer", e.what());
      }
    }
    if (a.path().empty() && a.glob().empty() && a.enum__size() == 0) {
      err(f, "checks nothing: give path, glob or enum");
    }
    if (!a.path().empty()) {
      refs(f + ".path", a.path());
      if (a.path()[0] != '/' && a.path()[0] != '$') {
        err(f + ".path", "a path glob is absolute (or starts with ${param})");
      }
    }
    if (!a.glob().empty()) refs(f + ".glob", a.glob());
  }
  for (int i = 0; i < r.during_size(); ++i) {
    const auto& d = r.during(i);
    const std::string f = absl::StrCat("tools.during[", i, "]");
    if (d.tool().empty()) err(f + ".tool", "missing: the tool name pattern the rules apply to");
    if (!d.has_exec() && !d.has_files() && !d.has_network()) {
      err(f, "narrows nothing: give exec, files or network");
    }
  }
  for (int i = 0; i < r.approval_size(); ++i) {
    const auto& a = r.approval(i);
    const std::string f = absl::StrCat("tools.approval[", i, "]");
    if (a.tool().empty()) err(f + ".tool", "missing: the tool name pattern that needs approval");
    if (!a.timeout().empty() && a.timeout().find("${") == std::string::npos) {
      if (auto d = ParseDurationStrict(a.timeout()); !d.ok()) {
        err(f + ".timeout", std::string(d.status().message()));
      }
    }
  }
}

absl::Status CheckToolSubset(const ToolPolicy* child, const ToolPolicy* parent,
                             const std::string& parent_name) {
  if (!parent) return absl::OkStatus();
  auto refuse = [&](const std::string& what) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " is not allowed by parent intent ", parent_name));
  };
  if (!child) return refuse("a sub-agent without tools: (every tool)");
  const auto& p = parent->rules();
  const auto& c = child->rules();
  if (p.allow_present()) {
    if (!c.allow_present()) return refuse("tools without tools.allow (every tool not denied)");
    for (const std::string& ca : c.allow()) {
      const bool literal = ca.find_first_of("*?") == std::string::npos;
      const bool covered = std::any_of(p.allow().begin(), p.allow().end(), [&](const auto& pa) {
        return pa == ca || (literal && NameMatch(pa, ca));
      });
      if (!covered) return refuse(absl::StrCat("tools.allow ", ca));
    }
  }
  for (const std::string& pd : p.deny()) {
    if (std::find(c.deny().begin(), c.deny().end(), pd) == c.deny().end()) {
      return refuse(absl::StrCat("tools without tools.deny ", pd));
    }
  }
  for (const auto& pa : p.arguments()) {
    const bool kept = std::any_of(c.arguments().begin(), c.arguments().end(), [&](const auto& ca) {
      return google::protobuf::util::MessageDifferencer::Equals(pa, ca);
    });
    if (!kept) {
      return refuse(
          absl::StrCat("tool ", pa.tool(), " without the argument rule on ", pa.pointer()));
    }
  }
  for (const auto& pa : p.approval()) {
    const bool kept = std::any_of(c.approval().begin(), c.approval().end(),
                                  [&](const auto& ca) { return ca.tool() == pa.tool(); });
    if (!kept) return refuse(absl::StrCat("tool ", pa.tool(), " without approval"));
  }
  // A parent's narrowing during a tool's calls holds in the child: an entry for the same tool, no
  // wider than the parent's.
  for (const auto& [tool, pci] : parent->during()) {
    bool kept = false;
    for (const auto& [ctool, cci] : child->during()) {
      if (ctool == tool && CheckSubset(*cci, *pci).ok()) kept = true;
    }
    if (!kept) return refuse(absl::StrCat("tool ", tool, " without its tools.during rules"));
  }
  return absl::OkStatus();
}

}  // namespace writ::intent
