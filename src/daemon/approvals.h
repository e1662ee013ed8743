// Step-up approvals: pending requests bound to one exact action, and the per-task grants that
// `--scope task` leaves behind. Thread-safe: the pipeline adds and expires, control threads decide.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "state/store.h"
#include "writ/v1/event.pb.h"

namespace writ::daemon {

struct ApprovalRequest {
  std::string id;
  std::string task_id;
  std::string kind;         // exec, connect, open
  std::string action;       // the exact action, human-readable
  std::string action_hash;  // sha256 hex of the canonical action
  absl::Time created;
  absl::Time expires;
  uint32_t pid = 0;
  uint64_t start_ns = 0;
  std::string rule;
  std::vector<std::string> responses;  // run on deny or expiry
  v1::Event cause;
};

// Canonical action text and its sha256: exec "exec\0exe\0arg0\0arg1...", connect
// "connect\0ip\0port", open "open\0path\0flags". The approval covers exactly this and nothing else.
std::string ActionText(const v1::Event& ev);
std::string ActionHash(const v1::Event& ev);

class Approvals {
 public:
  // With a store, every change is written through and Restore() takes back what a previous writd
  // left (pending requests and grants of tasks that still exist).
  void SetStore(state::Store* store) { store_ = store; }
  void Restore(const std::function<bool(const std::string& task_id)>& task_alive);

  std::string Add(ApprovalRequest req);  // assigns and returns the id
  std::optional<ApprovalRequest> Take(const std::string& id);
  std::vector<ApprovalRequest> List() const;
  std::vector<ApprovalRequest> TakeExpired(absl::Time now);
  std::vector<ApprovalRequest> TakeTask(const std::string& task_id);
  size_t size() const;

  void Grant(const std::string& task_id, const std::string& action_hash);
  bool IsGranted(const std::string& task_id, const std::string& action_hash) const;
  void ForgetTask(const std::string& task_id);

 private:
  // Removes and returns the pending requests `pred` selects.
  template <typename Pred>
  std::vector<ApprovalRequest> TakeWhere(Pred pred);
  void Persist(const ApprovalRequest& r);
  void Unpersist(const std::string& id);

  state::Store* store_ = nullptr;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ApprovalRequest> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> grants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace writ::daemon
