#include "intent/glob.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "writ/abi/events.h"

namespace writ::intent {

static_assert(kArgCutBytes == WRIT_NAME_MAX, "the decoder cuts an argument at WRIT_NAME_MAX bytes");

bool WildMatch(absl::string_view p, absl::string_view s, bool star_crosses_slash) {
  // Classic single-backtrack-point wildcard match: linear in practice, O(|p|*|s|) worst case.
  size_t pi = 0, si = 0, star_p = absl::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
    } else if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si]) &&
               (star_crosses_slash || s[si] != '/' || p[pi] == '/')) {
      ++pi;
      ++si;
    } else if (star_p != absl::string_view::npos && (star_crosses_slash || s[star_s] != '/')) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

absl::StatusOr<Glob> Glob::ParsePath(absl::string_view pattern) {
  Glob g;
  g.pattern_ = std::string(pattern);
  if (pattern.empty()) return absl::InvalidArgumentError("empty pattern");
  if (pattern[0] != '/' && pattern.substr(0, 2) != "**") {
    return absl::InvalidArgumentError(absl::StrCat(
        "relative path \"", pattern, "\": patterns must be absolute (start with / or **/)"));
  }
  if (pattern.size() > 1 && pattern.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("trailing '/' in \"", pattern, "\": write DIR/** for everything below DIR"));
  }
  absl::string_view rest = pattern[0] == '/' ? pattern.substr(1) : pattern;
  bool all_literal = true;
  if (!rest.empty()) {
    for (absl::string_view seg : absl::StrSplit(rest, '/')) {
      if (seg.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("empty path segment ('//') in \"", pattern, "\""));
      }
      if (seg == "." || seg == "..") {
        return absl::InvalidArgumentError(absl::StrCat("'", seg, "' segment in \"", pattern,
                                                       "\": paths are matched after resolution"));
      }
      Segment s;
      s.text = std::string(seg);
      if (seg == "**") {
        s.type = Segment::kDoubleStar;
        all_literal = false;
      } else if (seg.find("**") != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("'**' must be a whole path segment in \"", pattern, "\""));
      } else if (seg.find_first_of("*?") != absl::string_view::npos) {
        s.type = Segment::kWild;
        all_literal = false;
      } else {
        s.type = Segment::kLiteral;
      }
      g.segments_.push_back(std::move(s));
    }
  }
  for (const Segment& seg : g.segments_) {
    if (seg.type == Segment::kLiteral && seg.text.size() > g.must_contain_.size())
      g.must_contain_ = seg.text;
  }
  if (pattern[0] == '/' && all_literal) {
    g.kind_ = Kind::kExact;
    g.literal_ = std::string(pattern);
  } else if (pattern[0] == '/' && !g.segments_.empty() &&
             g.segments_.back().type == Segment::kDoubleStar &&
             std::all_of(g.segments_.begin(), g.segments_.end() - 1,
                         [](const Segment& s) { return s.type == Segment::kLiteral; })) {
    g.kind_ = Kind::kPrefix;
    g.literal_ = std::string(pattern.substr(0, pattern.size() - 3));  // drop "/**"
  }
  const auto& sg = g.segments_;
  if (pattern[0] != '/' && sg.size() >= 2 && sg.size() <= 3 && sg[0].type == Segment::kDoubleStar &&
      sg[1].type == Segment::kLiteral && (sg.size() == 2 || sg[2].type == Segment::kDoubleStar)) {
    g.component_rule_ = sg.size() == 2 ? ComponentRule::kLeaf : ComponentRule::kAnyComponent;
    g.component_ = sg[1].text;
  }
  return g;
}

Glob Glob::ParseArg(absl::string_view pattern) {
  Glob g;
  g.path_ = false;
  g.pattern_ = std::string(pattern);
  g.any_args_ = pattern == "**";
  g.kind_ = pattern.find_first_of("*?") == absl::string_view::npos ? Kind::kExact : Kind::kGeneral;
  g.literal_ = g.pattern_;
  return g;
}

bool Glob::Match(absl::string_view s) const {
  if (!path_) return kind_ == Kind::kExact ? s == literal_ : WildMatch(pattern_, s, true);
  switch (kind_) {
    case Kind::kExact:
      return s == literal_;
    case Kind::kPrefix:
      if (s.empty() || s[0] != '/') return false;
      return s.substr(0, literal_.size()) == literal_ &&
             (s.size() == literal_.size() || s[literal_.size()] == '/');
    case Kind::kGeneral:
      break;
  }
  if (s.empty() || s[0] != '/') return false;
  if (!must_contain_.empty() && s.find(must_contain_) == absl::string_view::npos) return false;
  // Segment-level match with one backtrack point per "**" (the latest), like '*' in WildMatch.
  const size_t n = segments_.size();
  size_t pi = 0;
  size_t pos = 1;  // start of the next path segment
  size_t star_pi = SIZE_MAX, star_pos = 0;
  const bool root = s.size() == 1;
  while (!root && pos <= s.size()) {
    size_t end = s.find('/', pos);
    if (end == absl::string_view::npos) end = s.size();
    absl::string_view seg = s.substr(pos, end - pos);
    if (pi < n && segments_[pi].type == Segment::kDoubleStar) {
      star_pi = pi++;
      star_pos = pos;
      continue;
    }
    if (pi < n &&
        (segments_[pi].type == Segment::kLiteral ? segments_[pi].text == seg
                                                 : WildMatch(segments_[pi].text, seg, false))) {
      ++pi;
      pos = end + 1;
      continue;
    }
    if (star_pi != SIZE_MAX) {
      // Let the last "**" swallow one more segment and retry from there.
      size_t e = s.find('/', star_pos);
      // No segment left for the "**" to give back: it swallows the rest, then the tail must be
      // "**"s.
      star_pos = e == absl::string_view::npos ? s.size() + 1 : e + 1;
      pos = star_pos;
      pi = star_pi + 1;
      continue;
    }
    return false;
  }
  while (pi < n && segments_[pi].type == Segment::kDoubleStar) ++pi;
  return pi == n;
}

namespace {

using Argv = google::protobuf::RepeatedPtrField<std::string>;

// An argument writd may have seen only the beginning of (see MatchArgs).
bool MayBeCut(const Argv& argv, int i, bool truncated) {
  return truncated && (i == argv.size() - 1 || argv.Get(i).size() >= kArgCutBytes);
}

}  // namespace

bool MatchArgs(const std::vector<Glob>& p, const Argv& argv, int name, bool truncated) {
  const int n = static_cast<int>(p.size());
  int pi = 0, ai = name + 1;  // argv[name] is the program's name, judged by the exe pattern
  int star_pi = -1, star_ai = 0;
  while (ai < argv.size()) {
    if (pi < n && p[pi].is_any_args()) {
      star_pi = pi++;
      star_ai = ai;
    } else if (pi < n && (p[pi].Match(argv.Get(ai)) || MayBeCut(argv, ai, truncated))) {
      ++pi;
      ++ai;
    } else if (star_pi >= 0) {
      pi = star_pi + 1;
      ai = ++star_ai;
    } else {
      return false;
    }
  }
  // Every argument seen is matched by a prefix of the patterns: unseen arguments could complete it.
  if (truncated) return true;
  while (pi < n && p[pi].is_any_args()) ++pi;
  return pi == n;
}

bool MatchSubcommand(const Glob& sub, const std::vector<Glob>* args, const Argv& argv, int name,
                     bool truncated) {
  auto rest_matches = [&](int at) {
    return args == nullptr || MatchArgs(*args, argv, at, truncated);
  };
  if (name == 0 && argv.size() > 0) {
    absl::string_view prog = argv.Get(0);
    if (size_t slash = prog.rfind('/'); slash != absl::string_view::npos)
      prog.remove_prefix(slash + 1);
    if (size_t dash = prog.find('-');
        dash != absl::string_view::npos &&
        (sub.Match(prog.substr(dash + 1)) || MayBeCut(argv, 0, truncated)) && rest_matches(0)) {
      return true;
    }
  }
  bool after_option = false;  // the previous argument was an option: this one may be its value
  for (int i = name + 1; i < argv.size(); ++i) {
    absl::string_view a = argv.Get(i);
    if (!a.empty() && a[0] == '-') {
      after_option = true;
      continue;
    }
    if ((sub.Match(a) || MayBeCut(argv, i, truncated)) && rest_matches(i)) return true;
    if (!after_option) return false;  // an operand no option can claim: the subcommand, another one
    after_option = false;
  }
  return truncated;  // undecided when the arguments seen ran out: the subcommand may follow
}

void PathMatcher::Add(const Glob& g, int rule) {
  switch (g.kind()) {
    case Glob::Kind::kExact:
      exact_.try_emplace(g.literal(), rule);
      break;
    case Glob::Kind::kPrefix:
      prefixes_.emplace_back(g.literal(), rule);
      std::stable_sort(prefixes_.begin(), prefixes_.end(), [](const auto& a, const auto& b) {
        return a.first.size() > b.first.size();
      });
      break;
    case Glob::Kind::kGeneral:
      globs_.emplace_back(g, rule);
      break;
  }
}

int PathMatcher::Match(absl::string_view path) const {
  if (auto it = exact_.find(path); it != exact_.end()) return it->second;
  if (!path.empty() && path[0] == '/') {
    for (const auto& [prefix, rule] : prefixes_) {
      if (path.size() >= prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
          (path.size() == prefix.size() || path[prefix.size()] == '/')) {
        return rule;
      }
    }
  }
  for (const auto& [glob, rule] : globs_) {
    if (glob.Match(path)) return rule;
  }
  return -1;
}

std::vector<std::string> PathMatcher::ExactPaths() const {
  std::vector<std::string> out;
  for (const auto& [p, r] : exact_) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> PathMatcher::Components(Glob::ComponentRule which) const {
  std::vector<std::string> out;
  for (const auto& [glob, rule] : globs_) {
    if (which != Glob::ComponentRule::kNone && glob.component_rule() == which)
      out.push_back(glob.component());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool PathMatcher::has_non_component_globs() const {
  for (const auto& [glob, rule] : globs_) {
    if (glob.component_rule() == Glob::ComponentRule::kNone) return true;
  }
  return false;
}

std::vector<std::string> PathMatcher::Prefixes() const {
  std::vector<std::string> out;
  for (const auto& [p, r] : prefixes_) out.push_back(p + "/");
  return out;
}

}  // namespace writ::intent
