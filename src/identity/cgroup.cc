#include "identity/cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::identity {

absl::StatusOr<std::string> FindCgroup2Mount(const std::string& mounts_file) {
  ASSIGN_OR_RETURN(std::string mounts, ReadFile(mounts_file));
  for (absl::string_view line : absl::StrSplit(mounts, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() >= 3 && f[2] == "cgroup2") return std::string(f[1]);
  }
  return absl::FailedPreconditionError(
      "no cgroup2 mount in /proc/mounts: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) "
      "or boot with systemd.unified_cgroup_hierarchy");
}

absl::StatusOr<std::string> ProcessCgroup(int pid) {
  ASSIGN_OR_RETURN(std::string s, ReadFile(absl::StrCat("/proc/", pid, "/cgroup")));
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    if (absl::StartsWith(line, "0::")) return std::string(line.substr(3));
  }
  return absl::NotFoundError(absl::StrCat("pid ", pid, " has no cgroup v2 entry"));
}

absl::StatusOr<uint64_t> CgroupId(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", dir));
  return static_cast<uint64_t>(st.st_ino);
}

int CgroupLevel(const std::string& root, const std::string& dir) {
  if (dir.size() <= root.size()) return 0;
  int level = 0;
  for (char c : dir.substr(root.size())) level += (c == '/');
  return level;
}

absl::StatusOr<CgroupManager> CgroupManager::Create(const std::string& mount,
                                                    const std::string& subtree) {
  std::string root = absl::StrCat(mount, "/", subtree);
  if (mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("mkdir ", root));
  }
  return CgroupManager(mount, root);
}

absl::StatusOr<uint64_t> CgroupManager::CreateTask(const std::string& task_id) const {
  // Root-owned: writd places the launcher's child itself, so no agent needs write access here.
  std::string dir = TaskDir(task_id);
  if (mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus(errno, absl::StrCat("mkdir ", dir));
  auto id = CgroupId(dir);
  if (!id.ok()) rmdir(dir.c_str());
  return id;
}

absl::Status CgroupManager::RemoveTask(const std::string& task_id) const {
  std::string dir = TaskDir(task_id);
  // A cgroup whose last process just exited can report EBUSY for a moment: retry briefly.
  for (int i = 0; i < 50; i++) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ErrnoStatus(errno, absl::StrCat("rmdir ", dir));
}

absl::Status CgroupManager::Kill(const std::string& task_id) const {
  return WriteFile(TaskDir(task_id) + "/cgroup.kill", "1");
}

absl::Status CgroupManager::Freeze(const std::string& task_id, bool frozen) const {
  return WriteFile(TaskDir(task_id) + "/cgroup.freeze", frozen ? "1" : "0");
}

static absl::StatusOr<bool> EventsField(const std::string& dir, absl::string_view key) {
  ASSIGN_OR_RETURN(std::string s, ReadFile(dir + "/cgroup.events"));
  for (absl::string_view line : absl::StrSplit(s, '\n')) {
    if (absl::StartsWith(line, key) && line.size() > key.size() + 1) {
      return line[key.size() + 1] == '1';
    }
  }
  return absl::InternalError(absl::StrCat("no ", key, " in ", dir, "/cgroup.events"));
}

absl::StatusOr<bool> CgroupManager::Populated(const std::string& task_id) const {
  return EventsField(TaskDir(task_id), "populated");
}

absl::StatusOr<bool> CgroupManager::Frozen(const std::string& task_id) const {
  return EventsField(TaskDir(task_id), "frozen");
}

absl::StatusOr<int> CgroupManager::ProcessCount(const std::string& task_id) const {
  ASSIGN_OR_RETURN(std::string s, ReadFile(TaskDir(task_id) + "/cgroup.procs"));
  int n = 0;
  for (char c : s) n += (c == '\n');
  return n;
}

}  // namespace writ::identity
