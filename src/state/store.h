// Durable daemon state: tasks, pending approvals and per-task grants in SQLite (WAL) under the
// state dir. Written through on every change, read once at start to re-adopt what a previous writd
// left.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "writ/v1/state.pb.h"

struct sqlite3;

namespace writ::state {

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();

  absl::Status PutTask(const v1::TaskRecord& t);
  absl::Status DeleteTask(const std::string& id);  // also its approvals and grants
  absl::StatusOr<std::vector<v1::TaskRecord>> Tasks();

  absl::Status PutApproval(const v1::ApprovalRecord& a);
  absl::Status DeleteApproval(const std::string& id);
  absl::StatusOr<std::vector<v1::ApprovalRecord>> Approvals();

  absl::Status PutGrant(const std::string& task_id, const std::string& hash);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Grants();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status Exec(const std::string& sql);
  absl::Status PutBlob(const char* table, const std::string& id, const std::string& blob);
  absl::StatusOr<std::vector<std::string>> Blobs(const char* table);
  absl::Status Delete(const char* table, const char* column, const std::string& id);

  absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace writ::state
