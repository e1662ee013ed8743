// Names the kernel hands over that rules must interpret before they can match: unix-socket names
// (paths and abstract names, network.unix) and the program a dynamic loader run as a program will
// load (process.loaded). Both are pure and allocation-free on the judging path.
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "intent/intent.h"

namespace writ::intent {

absl::StatusOr<Glob> UnixMatcher::Parse(absl::string_view pattern, bool* abstract) {
  *abstract = !pattern.empty() && pattern[0] == '@';
  if (*abstract) {
    if (pattern.size() == 1) {
      return absl::InvalidArgumentError(
          "empty abstract socket name: write @NAME (the name after the leading NUL)");
    }
    return Glob::ParseArg(pattern.substr(1));
  }
  if (pattern.empty() || pattern[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", pattern,
        "\" is neither an absolute socket path (/run/...) nor an abstract name (@name)"));
  }
  return Glob::ParsePath(pattern);
}

void UnixMatcher::Add(const Glob& g, bool abstract, int rule) {
  if (abstract) {
    abstract_.emplace_back(g, rule);
  } else {
    paths_.Add(g, rule);
  }
}

int UnixMatcher::Match(absl::string_view name) const {
  if (!name.empty() && name[0] == '@') {
    for (const auto& [g, rule] : abstract_) {
      if (g.Match(name.substr(1))) return rule;
    }
    return -1;
  }
  return paths_.Match(name);
}

namespace {

// glibc's rtld (elf/rtld.c, dl_main): options that take the next argument, and those that take
// none.
constexpr const char* kWithArgument[] = {
    "--library-path",         "--inhibit-rpath",    "--audit", "--preload", "--argv0",
    "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"};
constexpr const char* kWithout[] = {"--list",          "--verify",           "--inhibit-cache",
                                    "--list-tunables", "--list-diagnostics", "--help",
                                    "--version"};

bool OneOf(const std::string& s, const char* const* list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s == list[i]) return true;
  }
  return false;
}

}  // namespace

LoadedProgram DynamicLoaderProgram(const google::protobuf::RepeatedPtrField<std::string>& argv,
                                   bool argv_truncated) {
  LoadedProgram out;
  int i = 1;
  while (i < argv.size()) {
    const std::string& a = argv.Get(i);
    if (OneOf(a, kWithArgument, std::size(kWithArgument))) {
      i += 2;  // without its argument the loader stops at a usage error: runs nothing
      continue;
    }
    if (OneOf(a, kWithout, std::size(kWithout))) {
      i++;
      continue;
    }
    if (a == "--") {
      i++;
      break;
    }
    if (absl::StartsWith(a, "--")) {
      out.index = -1;  // unknown to this grammar: a newer loader may take an argument
      return out;
    }
    break;
  }
  if (i >= argv.size()) {
    // Nothing left: the loader prints its usage and runs nothing -- unless argv was cut before it.
    out.index = argv_truncated ? -1 : 0;
    return out;
  }
  out.index = i;
  out.bare = argv.Get(i).find('/') == std::string::npos;
  return out;
}

}  // namespace writ::intent
