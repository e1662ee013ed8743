// Internals of writ policy suggest shared by suggest.cc (collecting and writing the intent),
// suggest_paths.cc (turning observed paths into the rules a person would write) and
// suggest_check.cc (replaying a recording, comparing with an existing intent). Not part of the
// intent API.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace writ::intent::suggest {

// Well-known secret locations: always in files.deny of a suggestion, never allowed by it.
struct SecretRule {
  const char* pattern;
  const char* sample;  // a path the pattern denies, for the suggestion's own violation test
};
const std::vector<SecretRule>& SecretRules();
// The secret pattern `path` falls under, or nullptr.
const char* SecretOf(absl::string_view path);

// A directory or file the task's command line (or its params) named: it becomes ${name}.
struct Param {
  std::string name;
  std::string value;  // absolute, normalised
  bool dir = true;
};

std::string Parent(const std::string& p);
bool Under(absl::string_view p, absl::string_view dir);

// Per-process and per-boot names made stable: /proc/<pid>/x → /proc/*/x, /dev/pts/3 → /dev/pts/*,
// cgroup paths → /sys/fs/cgroup/**/NAME, mktemp-style random name parts → *. `why` gets a note
// (once per kind) when something was rewritten.
std::string Stable(const std::string& path, std::set<std::string>* why);

// Where a path's rule goes, and what it is.
struct PathRule {
  std::string pattern;   // glob ("" = drop the path)
  bool general = false;  // a root with ** (package, runtime, system tree, a parameter's directory)
};
// The rule for a read (write=false) or write of `path` (already Stable), given the parameters.
PathRule RuleFor(const std::string& path, bool write, const std::vector<Param>& params);
// The rule for an exec of `exe`.
PathRule ExecRuleFor(const std::string& exe, const std::vector<Param>& params);

// Does pattern q allow everything pattern (or path) p does? q == p, or q is DIR/** over p.
bool Covers(const std::string& q, const std::string& p);

// Exact paths of one list → a few patterns: a directory with several exact entries becomes DIR/**
// (never a sensitive root such as /etc, /home, /usr/bin, /tmp for writes), entries covered by a
// pattern of the list are dropped.
std::set<std::string> Generalise(const std::set<std::string>& items, bool writes);

// Parameters from the task_start's command and params: absolute directories (and files the task
// opened) named there, excluding system locations and package trees. `observed` are the task's
// paths.
std::vector<Param> ParamsFrom(const std::map<std::string, std::string>& task_params,
                              const std::vector<std::string>& command,
                              const std::set<std::string>& observed);

}  // namespace writ::intent::suggest
