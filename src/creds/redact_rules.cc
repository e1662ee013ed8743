#include "creds/redact_rules.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "re2/re2.h"
#include "util/util.h"
#include "yaml-cpp/yaml.h"

namespace writ::creds {

extern const char kBuiltinRedactionRulesYaml[];  // generated from data/redaction.yaml

namespace {

// Debian's Abseil has its own string_view: absl::StrCat takes that one.
absl::string_view A(std::string_view s) { return {s.data(), s.size()}; }

constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxIdBytes = 48;
constexpr size_t kMinKeywordBytes = 3;

class Parser {
 public:
  explicit Parser(const std::string& file) : file_(file) {}

  absl::Status Error(const YAML::Node& n, std::string_view field, std::string_view msg) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", n.Mark().line + 1, ": ", A(field), ": ", A(msg)));
  }

  absl::Status Str(const YAML::Node& n, std::string_view field, std::string* out) const {
    if (!n.IsScalar()) return Error(n, field, "must be a string");
    *out = n.Scalar();
    return absl::OkStatus();
  }

  absl::Status StrList(const YAML::Node& n, std::string_view field,
                       std::vector<std::string>* out) const {
    if (!n.IsSequence()) return Error(n, field, "must be a list of strings");
    for (size_t i = 0; i < n.size(); ++i) {
      std::string s;
      absl::Status st = Str(n[i], absl::StrCat(A(field), "[", i, "]"), &s);
      if (!st.ok()) return st;
      if (s.empty()) return Error(n[i], absl::StrCat(A(field), "[", i, "]"), "must not be empty");
      out->push_back(std::move(s));
    }
    return absl::OkStatus();
  }

  absl::Status Bool(const YAML::Node& n, std::string_view field, bool* out) const {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
      *out = n.Scalar() == "true";
      return absl::OkStatus();
    }
    return Error(n, field, "must be true or false");
  }

  // An RE2 expression that compiles; `groups` (>= 0) is the least number of capture groups it
  // needs.
  absl::Status Regex(const YAML::Node& n, std::string_view field, const std::string& re,
                     int groups) const {
    RE2::Options o;
    o.set_log_errors(false);
    RE2 compiled(re, o);
    if (!compiled.ok())
      return Error(n, field, absl::StrCat("invalid RE2 expression: ", compiled.error()));
    if (compiled.NumberOfCapturingGroups() < groups) {
      return Error(n, field,
                   absl::StrCat("needs a capture group (group ", groups, " is the secret)"));
    }
    return absl::OkStatus();
  }

  absl::Status Rule(const YAML::Node& n, const std::string& field, RedactionRule* r) const {
    if (!n.IsMap()) return Error(n, field, "must be a mapping");
    r->file = file_;
    r->line = n.Mark().line + 1;
    bool have_forms = false;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.Scalar();
      const YAML::Node v = it->second;  // a copy: yaml-cpp's iterator yields a temporary pair
      const std::string f = absl::StrCat(field, ".", key);
      absl::Status st;
      if (key == "id") {
        st = Str(v, f, &r->id);
        if (st.ok()) st = CheckId(v, f, r->id);
      } else if (key == "description") {
        st = Str(v, f, &r->description);
      } else if (key == "pattern") {
        st = Str(v, f, &r->pattern);
        if (st.ok()) st = Regex(v, f, r->pattern, 0);
        if (st.ok() && r->pattern.empty()) st = Error(v, f, "must not be empty");
      } else if (key == "options") {
        st = StrList(v, f, &r->options);
      } else if (key == "option_pattern") {
        st = Str(v, f, &r->option_pattern);
        if (st.ok()) st = Regex(v, f, r->option_pattern, 0);
      } else if (key == "option_exclude") {
        st = Str(v, f, &r->option_exclude);
        if (st.ok()) st = Regex(v, f, r->option_exclude, 0);
      } else if (key == "ignore_case") {
        st = Bool(v, f, &r->ignore_case);
      } else if (key == "programs") {
        st = StrList(v, f, &r->programs);
        for (size_t i = 0; st.ok() && i < r->programs.size(); ++i) {
          if (r->programs[i].find('/') != std::string::npos) {
            st = Error(v[i], absl::StrCat(f, "[", i, "]"), "a program is a basename, without '/'");
          }
        }
      } else if (key == "after") {
        st = StrList(v, f, &r->after);
      } else if (key == "forms") {
        std::vector<std::string> forms;
        st = StrList(v, f, &forms);
        for (size_t i = 0; st.ok() && i < forms.size(); ++i) {
          if (forms[i] == "separate") {
            r->form_separate = true;
          } else if (forms[i] == "equals") {
            r->form_equals = true;
          } else if (forms[i] == "attached") {
            r->form_attached = true;
          } else {
            st = Error(v[i], absl::StrCat(f, "[", i, "]"),
                       absl::StrCat("unknown form \"", forms[i],
                                    "\" (expected separate, equals or attached)"));
          }
        }
        have_forms = true;
      } else if (key == "value") {
        st = Str(v, f, &r->value);
        if (st.ok()) st = Regex(v, f, r->value, 1);
      } else if (key == "keywords") {
        st = StrList(v, f, &r->keywords);
        for (size_t i = 0; st.ok() && i < r->keywords.size(); ++i) {
          if (r->keywords[i].size() < kMinKeywordBytes) {
            st = Error(v[i], absl::StrCat(f, "[", i, "]"),
                       absl::StrCat("a keyword needs at least ", kMinKeywordBytes, " bytes"));
          }
          r->keywords[i] = absl::AsciiStrToLower(r->keywords[i]);
        }
      } else if (key == "requires") {
        st = Str(v, f, &r->requires_any);
        if (st.ok() && r->requires_any.empty()) st = Error(v, f, "must not be empty");
      } else {
        st = Error(it->first, f, "unknown key");
      }
      if (!st.ok()) return st;
    }
    if (r->id.empty()) return Error(n, field + ".id", "missing");
    const bool is_pattern = !r->pattern.empty();
    const bool is_option = !r->options.empty() || !r->option_pattern.empty();
    if (is_pattern == is_option) {
      return Error(n, field,
                   "a rule has either a pattern or options/option_pattern (exactly one kind)");
    }
    if (is_pattern) {
      if (r->keywords.empty()) {
        return Error(n, field + ".keywords",
                     "missing: a pattern rule names the literals its matches contain");
      }
      for (const char* k :
           {"option_exclude", "programs", "after", "forms", "value", "ignore_case"}) {
        if (n[k]) return Error(n[k], absl::StrCat(field, ".", k), "only for option rules");
      }
    } else {
      if (!have_forms) return Error(n, field + ".forms", "missing (separate, equals, attached)");
      if (!r->option_pattern.empty() && r->keywords.empty()) {
        return Error(n, field + ".keywords",
                     "missing: option_pattern needs the literals its options contain");
      }
      if (!r->option_exclude.empty() && r->option_pattern.empty()) {
        return Error(n["option_exclude"], field + ".option_exclude", "only with option_pattern");
      }
      if (r->form_attached) {
        bool any_short = false;
        for (const auto& o : r->options) any_short = any_short || (o.size() == 2 && o[0] == '-');
        if (!any_short) {
          return Error(n, field + ".forms",
                       "attached applies to two-character options (-p) and this rule has none");
        }
      }
      if (n["requires"]) return Error(n["requires"], field + ".requires", "only for pattern rules");
    }
    return absl::OkStatus();
  }

  absl::Status CheckId(const YAML::Node& n, std::string_view field, const std::string& id) const {
    bool ok = !id.empty() && id.size() <= kMaxIdBytes && id[0] != '-';
    for (char c : id) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (!ok) {
      return Error(n, field,
                   absl::StrCat("\"", id, "\": an id is 1-", kMaxIdBytes,
                                " characters of a-z, 0-9 and '-', not starting with '-'"));
    }
    return absl::OkStatus();
  }

 private:
  const std::string& file_;
};

}  // namespace

absl::StatusOr<RedactionRuleSet> ParseRedactionRules(std::string_view text, const std::string& file,
                                                     const RedactionRuleSet* base) {
  if (text.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":1: file larger than ", kMaxFileBytes, " bytes"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {  // yaml-cpp throws; kept at this edge
    return absl::InvalidArgumentError(absl::StrCat(file, ":", e.mark.line + 1, ": yaml: ", e.msg));
  }
  Parser p(file);
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":1: a rules file is a mapping (version, rules)"));
  }
  bool builtin = true;
  bool have_version = false;
  std::vector<std::pair<std::string, YAML::Node>> disable;
  std::vector<RedactionRule> own;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.Scalar();
    const YAML::Node v = it->second;
    if (key == "version") {
      if (!v.IsScalar() || v.Scalar() != "1") return p.Error(v, "version", "must be 1");
      have_version = true;
    } else if (key == "builtin" || key == "disable") {
      if (base == nullptr)
        return p.Error(it->first, key, "only in an override file (the built-in set has no base)");
      if (key == "builtin") {
        absl::Status st = p.Bool(v, key, &builtin);
        if (!st.ok()) return st;
      } else {
        std::vector<std::string> ids;
        absl::Status st = p.StrList(v, key, &ids);
        if (!st.ok()) return st;
        for (size_t i = 0; i < ids.size(); ++i) disable.emplace_back(ids[i], v[i]);
      }
    } else if (key == "rules") {
      if (!v.IsSequence()) return p.Error(v, "rules", "must be a list");
      absl::flat_hash_map<std::string, int> seen;
      for (size_t i = 0; i < v.size(); ++i) {
        RedactionRule r;
        const std::string field = absl::StrCat("rules[", i, "]");
        absl::Status st = p.Rule(v[i], field, &r);
        if (!st.ok()) return st;
        auto [at, fresh] = seen.emplace(r.id, r.line);
        if (!fresh) {
          return p.Error(
              v[i]["id"], field + ".id",
              absl::StrCat("duplicate id \"", r.id, "\" (first at line ", at->second, ")"));
        }
        own.push_back(std::move(r));
      }
    } else {
      return p.Error(it->first, key, "unknown key");
    }
  }
  if (!have_version)
    return absl::InvalidArgumentError(absl::StrCat(file, ":1: version: missing (version: 1)"));

  RedactionRuleSet out;
  if (base != nullptr && builtin) out = *base;
  for (const auto& [id, node] : disable) {
    // A named copy: clang 14 (C++20 before P1091) cannot capture a structured binding.
    const std::string& disabled = id;
    auto it = std::find_if(out.rules.begin(), out.rules.end(),
                           [&](const RedactionRule& r) { return r.id == disabled; });
    if (it == out.rules.end()) {
      return p.Error(node, "disable", absl::StrCat("no built-in rule \"", id, "\" to turn off"));
    }
    out.rules.erase(it);
  }
  for (RedactionRule& r : own) {
    auto it = std::find_if(out.rules.begin(), out.rules.end(),
                           [&](const RedactionRule& b) { return b.id == r.id; });
    if (it != out.rules.end()) {
      *it = std::move(r);  // same id: replaces the built-in rule in its place (and priority)
    } else {
      out.rules.push_back(std::move(r));
    }
  }
  if (out.rules.size() > kMaxRedactionRules) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":1: rules: ", out.rules.size(),
                                                   " rules in the merged set, at most ",
                                                   kMaxRedactionRules));
  }
  return out;
}

std::string_view BuiltinRedactionRulesText() { return kBuiltinRedactionRulesYaml; }

const RedactionRuleSet& BuiltinRedactionRules() {
  static const RedactionRuleSet* set = [] {
    auto parsed =
        ParseRedactionRules(BuiltinRedactionRulesText(), "data/redaction.yaml (built in)");
    if (!parsed.ok()) {
      // A broken built-in set is a build defect the unit tests catch; never run without redaction.
      std::fprintf(stderr, "writ: built-in redaction rules: %s\n",
                   std::string(parsed.status().message()).c_str());
      std::abort();
    }
    return new RedactionRuleSet(std::move(*parsed));
  }();
  return *set;
}

absl::StatusOr<RedactionRuleSet> LoadRedactionRules(const std::string& path) {
  if (path.empty()) return BuiltinRedactionRules();
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("redaction rules: ", text.status().message()));
  }
  return ParseRedactionRules(*text, path, &BuiltinRedactionRules());
}

}  // namespace writ::creds
