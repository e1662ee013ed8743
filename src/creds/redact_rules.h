// Redaction rules as data: the parser of data/redaction.yaml (compiled into writd as the built-in
// set) and of an operator's file that adds, replaces or turns off rules. Every check that can fail
// is made here, before a Redactor is built from the result, so a bad file is refused whole with
// "FILE:LINE: field: message" and nothing is half applied. The format is described in the banner of
// data/redaction.yaml and in docs/siem.md (Redaction).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace writ::creds {

// At most this many rules in a merged set (the prefilter keeps one bit per rule).
inline constexpr size_t kMaxRedactionRules = 256;

struct RedactionRule {
  std::string id;  // [a-z0-9][a-z0-9-]*, at most 48 bytes: it goes into marks and metric labels
  std::string description;
  // Pattern rule: an RE2 expression; the secret is its first participating capture group.
  std::string pattern;
  // Option rule (argv-aware): exact spellings and/or an expression over a whole '-' argument.
  std::vector<std::string> options;
  std::string option_pattern;
  std::string option_exclude;
  bool ignore_case = false;           // options compare case-insensitively
  std::vector<std::string> programs;  // basenames; empty = every program
  std::vector<std::string> after;     // the option must follow one of these arguments
  bool form_separate = false, form_equals = false, form_attached = false;
  std::string value;  // RE2 over the option's value; group 1 is the secret
  // Prefilter: lower-case literals, one of which every match contains; characters one of which the
  // string must contain.
  std::vector<std::string> keywords;
  std::string requires_any;
  // Where it was defined, for messages.
  std::string file;
  int line = 0;

  bool is_option_rule() const { return pattern.empty(); }
};

struct RedactionRuleSet {
  std::vector<RedactionRule> rules;  // priority order: the first rule wins an overlap
};

// Parses one rules file's text. `file` names it in errors. An override file may also carry
// `builtin: false` (start from no rules) and `disable: [ids]` (turn built-in rules off); `base` is
// the set those apply to (the built-in rules), and the result is the merged set: base minus
// disabled, with rules of the same id replaced in place and new ones appended. Every pattern is
// compiled here.
absl::StatusOr<RedactionRuleSet> ParseRedactionRules(std::string_view text, const std::string& file,
                                                     const RedactionRuleSet* base = nullptr);

// The built-in set (data/redaction.yaml as compiled in). Parsed once; the embedded text is checked
// by a unit test, so this cannot fail in a released binary (it aborts if it does).
const RedactionRuleSet& BuiltinRedactionRules();
std::string_view BuiltinRedactionRulesText();

// The built-in set merged with the file at `path` ("" = the built-in set alone).
absl::StatusOr<RedactionRuleSet> LoadRedactionRules(const std::string& path);

}  // namespace writ::creds
