// writ::intent globs: path patterns over resolved absolute paths and argument patterns over argv.
//
// Path globs: `*` = any characters inside one segment (never '/'), `**` = a whole segment matching
// zero or more segments, `?` = one character, anything else literal. Matching never allocates:
// patterns are pre-split into segments and matched against string_views of the path with bounded
// backtracking.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace writ::intent {

class Glob {
 public:
  enum class Kind { kExact, kPrefix, kGeneral };

  // Path pattern: absolute (starts with '/') or starting with "**/". Errors say what is wrong, e.g.
  // "'**' must be a whole path segment" for "/a/***".
  static absl::StatusOr<Glob> ParsePath(absl::string_view pattern);
  // Argument pattern: `*` any characters (including '/'), `?` one character, literal otherwise.
  static Glob ParseArg(absl::string_view pattern);

  bool Match(absl::string_view s) const;
  const std::string& pattern() const { return pattern_; }
  Kind kind() const { return kind_; }
  // kExact: the path; kPrefix: the directory ("" for "/**"), matching it and everything below it.
  const std::string& literal() const { return literal_; }
  bool is_any_args() const { return any_args_; }  // argument element "**"
  // Path-component patterns, a literal NAME (no '*' or '?') matched as one whole path component:
  // kLeaf for "**/NAME" (the path's last component is NAME), kAnyComponent for "**/NAME/**" (some
  // component is NAME: the directory itself or anything below it). kNone otherwise.
  enum class ComponentRule { kNone, kLeaf, kAnyComponent };
  ComponentRule component_rule() const { return component_rule_; }
  const std::string& component() const {
    return component_;
  }  // NAME, when component_rule() != kNone

 private:
  struct Segment {
    enum Type : uint8_t { kLiteral, kWild, kDoubleStar } type;
    std::string text;
  };
  std::string pattern_;
  std::string literal_;
  Kind kind_ = Kind::kGeneral;
  bool path_ = true;
  bool any_args_ = false;
  ComponentRule component_rule_ = ComponentRule::kNone;
  std::string component_;
  std::vector<Segment> segments_;
  // Longest literal segment: a path not containing it cannot match, checked with one memmem-like
  // scan before the segment walk (turns "**/.ssh/**" into a substring test for most paths).
  std::string must_contain_;
};

// In-segment wildcard match (`*`, `?`), no allocation.
bool WildMatch(absl::string_view pattern, absl::string_view s, bool star_crosses_slash);

// Bytes of one argument the decoder keeps (WRIT_NAME_MAX): a longer one is cut, and the event's
// process.args_truncated set.
inline constexpr size_t kArgCutBytes = 256;

// argv[name + 1..] against argument patterns; an element "**" matches any number of arguments.
// `name` is the index of the program's own name: 0, or for a shebang exec the script's place in the
// interpreter's argv (the arguments the script was given follow it).
// `truncated` (process.args_truncated): writd saw only part of argv (more than 16 arguments, 4 KiB,
// or an argument over kArgCutBytes). Then the patterns match when what was seen could begin an argv
// they match: the last argument seen, and any of kArgCutBytes, match any one pattern element, and
// arguments may follow. An approval is asked rather than skipped by padding argv.
bool MatchArgs(const std::vector<Glob>& patterns,
               const google::protobuf::RepeatedPtrField<std::string>& argv, int name = 0,
               bool truncated = false);

// The program's subcommand, wherever its options put it, against `subcommand` (an argument
// pattern), then, when `args` is given, the arguments after it against `args` (MatchArgs).
// Candidates:
//   * the program's dashed name: argv[0]'s last path component is "<prog>-<sub>" (git-push, how git
//     dispatches a command run as /usr/lib/git-core/git-push or through a symlink of that name);
//     only when `name` is 0;
//   * the first argument after argv[name] that does not start with '-', and every later one that
//     directly follows an argument starting with '-' (it may be that option's value: `git -C DIR
//     push`, `git -c k=v push`) until an argument neither an option nor an option's value decides.
// No list of a program's options is needed; what is assumed is that an option takes at most one
// separate value argument. An argument that happens to be an option's value and equals the
// subcommand
// (`git -C push status`) matches too: the rule errs on asking. With `truncated`, running out of
// arguments before the subcommand was decided matches (it may follow unseen), as does an argument
// that may have been cut.
bool MatchSubcommand(const Glob& subcommand, const std::vector<Glob>* args,
                     const google::protobuf::RepeatedPtrField<std::string>& argv, int name = 0,
                     bool truncated = false);

// A set of path patterns, each tagged with a rule index. Lookup order: exact hash set, then
// directory prefixes (longest first), then general globs in file order; the first hit decides.
class PathMatcher {
 public:
  void Add(const Glob& g, int rule);
  void set_present(bool p) { present_ = p; }
  bool present() const { return present_; }
  int Match(absl::string_view path) const;  // rule index or -1

  std::vector<std::string> ExactPaths() const;
  std::vector<std::string> Prefixes() const;  // as "/dir/"
  // The same with the rule each belongs to (prefixes without the trailing '/').
  const absl::flat_hash_map<std::string, int>& exact_entries() const { return exact_; }
  const std::vector<std::pair<std::string, int>>& prefix_entries() const { return prefixes_; }
  bool has_general() const { return !globs_.empty(); }
  // NAMEs of the general globs that are component rules (see Glob::ComponentRule), sorted, unique.
  std::vector<std::string> Components(Glob::ComponentRule which) const;
  // General globs that are not component rules: only userspace can match them.
  bool has_non_component_globs() const;
  size_t size() const { return exact_.size() + prefixes_.size() + globs_.size(); }

 private:
  bool present_ = false;
  absl::flat_hash_map<std::string, int> exact_;
  std::vector<std::pair<std::string, int>> prefixes_;
  std::vector<std::pair<Glob, int>> globs_;
};

}  // namespace writ::intent
