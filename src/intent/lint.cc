// PolicyWarnings: rules that load without error but can never take effect, or that an agent can
// step around by how it spells a command. Read from the loaded protos (no compile: no DNS, no
// parameters bound); a pattern holding ${param} is left out of every check that needs its value.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "intent/intent.h"

namespace writ::intent {
namespace {

using Strings = google::protobuf::RepeatedPtrField<std::string>;

std::optional<Glob> Parse(const std::string& pattern) {
  if (absl::StrContains(pattern, "${")) return std::nullopt;
  auto g = Glob::ParsePath(pattern);
  if (!g.ok()) return std::nullopt;
  return *std::move(g);
}

bool Under(absl::string_view path, absl::string_view dir) {
  return dir.empty() || path == dir || (absl::StartsWith(path, dir) && path[dir.size()] == '/');
}

// Every path `inner` matches, `outer` matches too. Decided for exact and directory (`/a/**`) inner
// patterns only; anything else is "not known to be covered".
bool Covers(const Glob& outer, const Glob& inner) {
  if (outer.pattern() == inner.pattern()) return true;
  if (inner.kind() == Glob::Kind::kExact) return outer.Match(inner.literal());
  if (inner.kind() == Glob::Kind::kPrefix && outer.kind() == Glob::Kind::kPrefix) {
    return Under(inner.literal(), outer.literal());
  }
  return false;
}

// Where an absolute literal path leads on this host when that is somewhere else: realpath(3) of the
// path, or of its deepest existing ancestor with the rest appended. "" when it resolves to itself
// or nothing of it exists.
std::string ResolvesElsewhere(const std::string& path) {
  std::string existing = path, rest;
  while (!existing.empty()) {
    char buf[PATH_MAX];
    if (realpath(existing.c_str(), buf) != nullptr) {
      std::string resolved = absl::StrCat(buf, rest);
      return resolved == path ? "" : resolved;
    }
    size_t slash = existing.rfind('/');
    if (slash == std::string::npos) break;
    rest = absl::StrCat(existing.substr(slash), rest);
    existing.resize(slash);
  }
  return "";
}

class Linter {
 public:
  Linter(const PolicySet& set, const writ::v1::Intent& in, std::vector<std::string>* out)
      : set_(set), in_(in), out_(out) {}

  void Run() {
    if (in_.has_exec()) {
      const auto& e = in_.exec();
      Duplicates("exec.allow", e.allow());
      Duplicates("exec.deny", e.deny());
      for (int i = 0; i < e.allow_size(); ++i) {
        const std::string field = absl::StrCat("exec.allow[", i, "]");
        ExecPath(field, e.allow(i));
        if (auto g = Parse(e.allow(i))) DeniedFirst(field, *g, "exec.deny", e.deny(), "allows");
      }
      for (int i = 0; i < e.deny_size(); ++i)
        ExecPath(absl::StrCat("exec.deny[", i, "]"), e.deny(i));
    }
    if (in_.has_files()) {
      const auto& f = in_.files();
      Duplicates("files.read", f.read());
      Duplicates("files.write", f.write());
      Duplicates("files.deny", f.deny());
      for (const auto& [name, list] :
           {std::pair{"files.read", &f.read()}, {"files.write", &f.write()}}) {
        for (int i = 0; i < list->size(); ++i) {
          if (auto g = Parse(list->Get(i))) {
            DeniedFirst(absl::StrCat(name, "[", i, "]"), *g, "files.deny", f.deny(), "allows");
          }
        }
      }
    }
    for (int i = 0; i < in_.approval_size(); ++i) Approval(i);
  }

 private:
  void Warn(const std::string& field, absl::string_view message) {
    out_->push_back(absl::StrCat(in_.source().file(), ":", set_.LineOf(in_.name(), field), ": ",
                                 field, ": warning: ", message));
  }

  void Duplicates(const std::string& name, const Strings& list) {
    for (int i = 0; i < list.size(); ++i) {
      for (int j = 0; j < i; ++j) {
        if (list.Get(i) == list.Get(j)) {
          Warn(absl::StrCat(name, "[", i, "]"), absl::StrCat("duplicate of ", name, "[", j, "] (",
                                                             list.Get(j), "): never reported"));
          break;
        }
      }
    }
  }

  // A rule that a deny list always wins over.
  void DeniedFirst(const std::string& field, const Glob& g, const std::string& deny_name,
                   const Strings& deny, absl::string_view what) {
    for (int j = 0; j < deny.size(); ++j) {
      auto d = Parse(deny.Get(j));
      if (d && Covers(*d, g)) {
        Warn(field,
             absl::StrCat("never ", what, " anything: ", deny_name, "[", j, "] (", deny.Get(j),
                          ") denies ", g.pattern(), " first (deny beats every other rule)"));
        return;
      }
    }
  }

  // Exec rules match the resolved program: a path that is a symlink (or below one) on this host
  // never matches an exec.
  void ExecPath(const std::string& field, const std::string& pattern) {
    auto g = Parse(pattern);
    if (!g || (g->kind() != Glob::Kind::kExact && g->kind() != Glob::Kind::kPrefix)) return;
    if (g->literal().empty()) return;  // "/**"
    std::string real = ResolvesElsewhere(g->literal());
    if (real.empty()) return;
    std::string msg =
        absl::StrCat(g->literal(), " is ", real, " on this host: exec rules match the ",
                     "resolved program, so this pattern never matches an exec; write ",
                     g->kind() == Glob::Kind::kExact ? real : absl::StrCat(real, "/**"));
    if (g->kind() == Glob::Kind::kExact && IsScript(real)) {
      absl::StrAppend(&msg,
                      " (a script: exec.allow judges the interpreter that runs it, exec.deny and ",
                      "approval rules its own path as well)");
    }
    Warn(field, msg);
  }

  static bool IsScript(const std::string& path) {
    char head[2] = {};
    FILE* f = fopen(path.c_str(), "rb");
    if (f == nullptr) return false;
    const bool script = fread(head, 1, 2, f) == 2 && head[0] == '#' && head[1] == '!';
    fclose(f);
    return script;
  }

  void Approval(int i) {
    const auto& a = in_.approval(i);
    const std::string field = absl::StrCat("approval[", i, "]");
    ExecPath(field + ".exec", a.exec());
    auto exe = Parse(a.exec());
    const bool every = !a.args_present() && a.args_size() == 0 && a.subcommand().empty();
    if (exe && in_.has_exec()) {
      const auto& deny = in_.exec().deny();
      for (int j = 0; j < deny.size(); ++j) {
        auto d = Parse(deny.Get(j));
        if (d && Covers(*d, *exe)) {
          Warn(field, absl::StrCat("never asked: exec.deny[", j, "] (", deny.Get(j), ") denies ",
                                   exe->pattern(), " first (deny beats approval)"));
          return;
        }
      }
    }
    for (int k = 0; k < i; ++k) {
      const auto& b = in_.approval(k);
      auto bexe = Parse(b.exec());
      const bool b_every = !b.args_present() && b.args_size() == 0 && b.subcommand().empty();
      const bool same = b.exec() == a.exec() && b.subcommand() == a.subcommand() &&
                        b.args_present() == a.args_present() &&
                        absl::StrJoin(b.args(), "\x1f") == absl::StrJoin(a.args(), "\x1f");
      if (same) {
        Warn(field, absl::StrCat("duplicate of approval[", k, "]: never reported"));
        return;
      }
      if (b_every && bexe && exe && Covers(*bexe, *exe)) {
        Warn(field, absl::StrCat("never reported: approval[", k, "] asks for every invocation of ",
                                 b.exec(), " first"));
        return;
      }
    }
    if (every) return;
    if (a.args_present() && a.args_size() == 0) {
      Warn(field + ".args",
           a.subcommand().empty()
               ? absl::StrCat("args: [] asks only when ", a.exec(),
                              " runs with no arguments at all (any argument skips it); leave args: "
                              "out to ask for every invocation")
               : absl::StrCat("args: [] asks only when nothing follows ", a.subcommand(),
                              " (any argument after it skips it); leave args: out"));
      return;
    }
    if (a.subcommand().empty() && a.args_size() > 0) {
      const std::string& first = a.args(0);
      if (!first.empty() && first != "**" && first[0] != '-' &&
          first.find_first_of("*?") == std::string::npos && !absl::StrContains(first, "${")) {
        Warn(field + ".args[0]",
             absl::StrCat("\"", first, "\" must be argv[1]: options before it (`prog -C DIR ",
                          first, "`, `prog -c k=v ", first, "`) skip this rule; write subcommand: ",
                          first, " to find it after the options"));
      }
    }
  }

  const PolicySet& set_;
  const writ::v1::Intent& in_;
  std::vector<std::string>* out_;
};

}  // namespace

std::vector<std::string> PolicyWarnings(const PolicySet& set) {
  std::vector<std::string> out;
  for (const auto& in : set.intents()) Linter(set, in, &out).Run();
  return out;
}

}  // namespace writ::intent
