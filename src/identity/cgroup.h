// cgroup v2 plumbing for tasks: find the cgroup2 mount, create/remove task cgroups, kill, freeze.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace writ::identity {

// The cgroup2 mount point from /proc/mounts (hybrid hosts mount it at /sys/fs/cgroup/unified).
absl::StatusOr<std::string> FindCgroup2Mount(const std::string& mounts_file = "/proc/mounts");

// The cgroup v2 path of a process relative to the cgroup2 root ("0::" line of /proc/<pid>/cgroup).
absl::StatusOr<std::string> ProcessCgroup(int pid);

// cgroup id as bpf_get_current_cgroup_id() reports it: the kernfs inode number of the directory.
absl::StatusOr<uint64_t> CgroupId(const std::string& dir);

// Number of path components below the cgroup2 root: "<root>/writ/t1" -> 2 (the BPF ancestor level).
int CgroupLevel(const std::string& root, const std::string& dir);

class CgroupManager {
 public:
  // root = <cgroup2 mount>/<subtree>; created if absent.
  static absl::StatusOr<CgroupManager> Create(const std::string& mount, const std::string& subtree);

  const std::string& mount() const { return mount_; }
  const std::string& root() const { return root_; }
  std::string TaskDir(const std::string& task_id) const { return root_ + "/" + task_id; }
  int task_level() const { return CgroupLevel(mount_, root_) + 1; }

  absl::StatusOr<uint64_t> CreateTask(const std::string& task_id) const;
  // rmdir; the cgroup must be empty. Missing is fine (idempotent).
  absl::Status RemoveTask(const std::string& task_id) const;
  absl::Status Kill(const std::string& task_id) const;                 // cgroup.kill
  absl::Status Freeze(const std::string& task_id, bool frozen) const;  // cgroup.freeze
  absl::StatusOr<bool> Populated(const std::string& task_id) const;    // cgroup.events
  absl::StatusOr<bool> Frozen(const std::string& task_id) const;
  absl::StatusOr<int> ProcessCount(const std::string& task_id) const;  // cgroup.procs lines

 private:
  CgroupManager(std::string mount, std::string root)
      : mount_(std::move(mount)), root_(std::move(root)) {}
  std::string mount_;
  std::string root_;
};

}  // namespace writ::identity
