// Workloads: agents writ did not launch, recognised by SPIRE-style selectors and adopted into a
// task (policy documents of `kind: Workloads`, see docs/policy.md). This file owns the selector
// syntax, the matcher writd runs for each adoption candidate, and the keys of the kernel's
// pre-filter.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "intent/glob.h"
#include "writ/v1/policy.pb.h"

namespace writ::intent {

struct Selector {
  enum class Type { kExePath, kSha256, kUid, kCgroupPath, kSystemdId };
  Type type;
  std::string value;  // exe path, lowercase sha256 hex, cgroup glob, systemd unit
  uint32_t uid = 0;
  std::optional<Glob> glob;  // kCgroupPath
};

// "unix:path:/usr/bin/x", "unix:sha256:<64 hex>", "unix:uid:1000", "cgroup:path:/user.slice/**",
// "systemd:id:claude.service". The error message says what is wrong and lists the known selectors.
absl::StatusOr<Selector> ParseSelector(absl::string_view s);

// What writd learns about a candidate process. sha256 is computed lazily (only a workload whose
// other selectors matched and that has a sha256 selector pays for hashing the exe).
struct ProcessFacts {
  std::string exe;  // resolved /proc/<pid>/exe
  uint32_t uid = 0;
  std::string cgroup_path;   // cgroup v2 path relative to the cgroup2 root ("/user.slice/...")
  std::string systemd_unit;  // SystemdUnitOf(cgroup_path)
  std::function<std::string()> sha256;  // lowercase hex, "" when unreadable
};

// The systemd unit a cgroup path belongs to: its deepest component naming a service or scope
// ("/system.slice/claude.service" -> "claude.service"); "" when none.
std::string SystemdUnitOf(absl::string_view cgroup_path);

// The pre-filter the kernel applies before a workload can match: a workload with a unix:path
// selector is a candidate by that exact path; else one with a unix:uid selector by uid; else every
// exec (any).
struct AdoptKernelKeys {
  std::vector<std::string> exe_paths;
  std::vector<uint32_t> uids;
  bool any = false;
  bool empty() const { return exe_paths.empty() && uids.empty() && !any; }
};

class WorkloadMatcher {
 public:
  // Workloads as loaded (selectors already validated by the loader; an invalid one is an error
  // here).
  static absl::StatusOr<WorkloadMatcher> Build(const std::vector<writ::v1::Workload>& workloads);

  // The first workload (in policy order) all of whose selectors match, or nullptr.
  const writ::v1::Workload* Match(const ProcessFacts& facts) const;
  AdoptKernelKeys kernel_keys() const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    writ::v1::Workload spec;
    std::vector<Selector> selectors;
  };
  std::vector<Entry> entries_;
};

}  // namespace writ::intent
