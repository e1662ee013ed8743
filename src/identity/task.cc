#include "identity/task.h"

#include "absl/strings/str_cat.h"

namespace writ::identity {

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kPending:
      return "pending";
    case TaskState::kRunning:
      return "running";
    case TaskState::kEnded:
      return "ended";
  }
  return "?";
}

const char* TaskModeName(TaskMode m) {
  switch (m) {
    case TaskMode::kRecord:
      return "record";
    case TaskMode::kMonitor:
      return "monitor";
    case TaskMode::kEnforce:
      return "enforce";
  }
  return "?";
}

absl::StatusOr<TaskMode> ParseTaskMode(absl::string_view name) {
  if (name == "record") return TaskMode::kRecord;
  if (name == "monitor") return TaskMode::kMonitor;
  if (name == "enforce") return TaskMode::kEnforce;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode \"", name, "\" (expected record, monitor or enforce)"));
}

TaskRegistry::TaskRegistry(uint32_t max_tasks) : slots_(max_tasks, false) {}

absl::StatusOr<uint32_t> TaskRegistry::AllocateSlot() {
  absl::MutexLock lock(&mu_);
  // Slot 0 is never handed out: a zeroed map value must not alias a real task.
  for (uint32_t i = 1; i < slots_.size(); i++) {
    if (!slots_[i]) {
      slots_[i] = true;
      return i;
    }
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("all ", slots_.size() - 1, " task slots are in use"));
}

bool TaskRegistry::ClaimSlot(uint32_t slot) {
  absl::MutexLock lock(&mu_);
  if (slot == 0 || slot >= slots_.size() || slots_[slot]) return false;
  slots_[slot] = true;
  return true;
}

void TaskRegistry::FreeSlot(uint32_t slot) {
  absl::MutexLock lock(&mu_);
  if (slot < slots_.size()) slots_[slot] = false;
}

absl::Status TaskRegistry::Add(std::shared_ptr<Task> task) {
  absl::MutexLock lock(&mu_);
  if (by_id_.contains(task->id)) return absl::AlreadyExistsError("task " + task->id + " exists");
  by_cgroup_[task->cgroup_id] = task;
  by_id_[task->id] = std::move(task);
  generation_.fetch_add(1, std::memory_order_release);
  return absl::OkStatus();
}

std::shared_ptr<Task> TaskRegistry::Remove(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  std::shared_ptr<Task> t = std::move(it->second);
  by_id_.erase(it);
  by_cgroup_.erase(t->cgroup_id);
  generation_.fetch_add(1, std::memory_order_release);
  return t;
}

std::shared_ptr<Task> TaskRegistry::Find(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::shared_ptr<Task> TaskRegistry::FindByCgroup(uint64_t cgroup_id) const {
  absl::MutexLock lock(&mu_);
  auto it = by_cgroup_.find(cgroup_id);
  return it == by_cgroup_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Task>> TaskRegistry::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Task>> out;
  out.reserve(by_id_.size());
  for (const auto& [id, t] : by_id_) out.push_back(t);
  return out;
}

size_t TaskRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return by_id_.size();
}

ProcessInfo* ProcessTable::Upsert(uint32_t tgid, uint64_t start_ns, bool* created) {
  auto it = map_.find(Key{tgid, start_ns});
  if (it != map_.end()) {
    *created = false;
    return &it->second;
  }
  if (map_.size() >= max_entries_) {
    overflows_++;
    *created = false;
    return nullptr;
  }
  *created = true;
  ProcessInfo* pi = &map_[Key{tgid, start_ns}];
  Publish();
  return pi;
}

ProcessInfo* ProcessTable::Find(uint32_t tgid, uint64_t start_ns) {
  auto it = map_.find(Key{tgid, start_ns});
  return it == map_.end() ? nullptr : &it->second;
}

bool ProcessTable::Erase(uint32_t tgid, uint64_t start_ns) {
  const bool erased = map_.erase(Key{tgid, start_ns}) > 0;
  if (erased) Publish();
  return erased;
}

size_t ProcessTable::EraseTask(uint64_t cgroup_id) {
  size_t n = 0;
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->second.cgroup_id == cgroup_id) {
      map_.erase(it++);
      n++;
    } else {
      ++it;
    }
  }
  Publish();
  return n;
}

}  // namespace writ::identity
