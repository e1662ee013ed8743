// Tasks (writs) and the registry that owns them, plus the per-task process table.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace writ::intent {
class CompiledIntent;
}

namespace writ::identity {

enum class TaskState { kPending, kRunning, kEnded };
const char* TaskStateName(TaskState s);

// What writd does with a task's events: record (observe, judge nothing), monitor (judge, act on
// nothing: `would_deny`), enforce.
enum class TaskMode : uint8_t { kRecord, kMonitor, kEnforce };
const char* TaskModeName(TaskMode m);
// "record" | "monitor" | "enforce"; anything else is an error naming the value.
absl::StatusOr<TaskMode> ParseTaskMode(absl::string_view name);

// Immutable after registration except for the atomics and the abort reason (under its own lock):
// the pipeline reads tasks without taking the registry's lock.
struct Task {
  std::string id;
  std::string spiffe_id;
  std::string principal;
  std::string intent;                   // name, empty when none
  std::string charter, charter_sha256;  // the intent's file and its sha256, as loaded
  std::string parent_task;              // sub-agent: the delegating task
  std::vector<std::string> chain;       // principal, agent, sub-agent ... (outermost first)
  std::map<std::string, std::string> params;
  std::vector<std::string> command;
  TaskMode mode = TaskMode::kMonitor;  // effective: the intent's mode, else the daemon's
  std::string cgroup_path;
  uint64_t cgroup_id = 0;
  uint32_t slot = 0;
  uint32_t owner_uid = 0;  // who launched it (the control peer's uid; the adopted process's uid)
  uint32_t run_uid = 0;    // who its processes run as (credential files are theirs)
  bool root = false;       // runs as root: opted in on the command line and in the intent
  // The control connection that created it: only that connection may start it (ControlService).
  uint64_t launcher_conn = 0;
  absl::Time start;
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<const intent::CompiledIntent> compiled;  // null: nothing is judged

  // Why the launcher could not start the command ("" = it did not fail). Written by the control
  // thread that hears from the launcher, read by the pipeline when it ends the task (also on the
  // pending timeout, when the two can meet): hence the lock.
  void SetAbortReason(std::string why) {
    absl::MutexLock lock(&abort_mu_);
    abort_reason_ = std::move(why);
  }
  std::string AbortReason() const {
    absl::MutexLock lock(&abort_mu_);
    return abort_reason_;
  }

  std::atomic<TaskState> state{TaskState::kPending};
  std::atomic<bool> frozen{false};
  std::atomic<bool> violated{false};
  std::atomic<int> live_processes{0};
  // MCP tool calls of this task writd still tracks (daemon/tool_calls.cc): 0 lets the pipeline skip
  // the tool-call lookup for the task's events.
  std::atomic<int> tool_calls{0};
  // Why the task will end when its cgroup empties, when not just "exited": writd killed it, or it
  // is a sub-agent whose parent ended, was revoked or was killed (a string literal; set once, first
  // cause wins).
  std::atomic<const char*> end_reason{nullptr};
  // Set by the first of its ancestors' cascades (Daemon::KillTask, Daemon::EndChildren) that killed
  // or revoked this sub-agent: later cascades (the parent killed, then revoked, then ended) skip
  // it.
  std::atomic<bool> killed_by_parent{false};
  std::atomic<bool> revoked_by_parent{false};

 private:
  mutable absl::Mutex abort_mu_;
  std::string abort_reason_ ABSL_GUARDED_BY(abort_mu_);
};

// Thread-safe. Lookups by cgroup id are what the pipeline does per event: it caches the last result
// and revalidates it against generation(), so a steady stream takes no lock.
class TaskRegistry {
 public:
  explicit TaskRegistry(uint32_t max_tasks);

  // Allocates a slot; fails when all are in use.
  absl::StatusOr<uint32_t> AllocateSlot();
  // Takes a specific slot back (restart: a restored task keeps the slot its kernel tables use).
  bool ClaimSlot(uint32_t slot);
  void FreeSlot(uint32_t slot);

  absl::Status Add(std::shared_ptr<Task> task);
  std::shared_ptr<Task> Remove(const std::string& id);
  std::shared_ptr<Task> Find(const std::string& id) const;
  std::shared_ptr<Task> FindByCgroup(uint64_t cgroup_id) const;
  std::vector<std::shared_ptr<Task>> All() const;
  size_t size() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Task>> by_id_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<Task>> by_cgroup_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> slots_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
};

// Processes seen in tasks, keyed by (tgid, start time) so a reused pid is a different process.
// Single-threaded (the pipeline thread), but for published_size().
struct ProcessInfo {
  uint32_t ppid = 0;
  uint64_t cgroup_id = 0;
  std::string exe;
  std::vector<std::string> args;
};

class ProcessTable {
 public:
  explicit ProcessTable(size_t max_entries) : max_entries_(max_entries) {}

  // Returns the entry, creating it when new; *created says which. Null when the table is full
  // (counted).
  ProcessInfo* Upsert(uint32_t tgid, uint64_t start_ns, bool* created);
  ProcessInfo* Find(uint32_t tgid, uint64_t start_ns);
  bool Erase(uint32_t tgid, uint64_t start_ns);
  // Drops every entry of a task (at task end): returns how many.
  size_t EraseTask(uint64_t cgroup_id);
  size_t size() const { return map_.size(); }
  // size() as last changed, readable from any thread (status: what ended tasks must not leave
  // behind).
  size_t published_size() const { return published_size_.load(std::memory_order_relaxed); }
  uint64_t overflows() const { return overflows_; }

 private:
  struct Key {
    uint32_t tgid;
    uint64_t start_ns;
    bool operator==(const Key& o) const { return tgid == o.tgid && start_ns == o.start_ns; }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.tgid, k.start_ns);
    }
  };
  void Publish() { published_size_.store(map_.size(), std::memory_order_relaxed); }

  size_t max_entries_;
  uint64_t overflows_ = 0;
  absl::flat_hash_map<Key, ProcessInfo> map_;
  std::atomic<size_t> published_size_{0};
};

}  // namespace writ::identity
