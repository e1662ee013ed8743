#include "state/store.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "util/proto_utf8.h"
#include "util/status_macros.h"

namespace writ::state {
namespace {

absl::Status SqlError(sqlite3* db, const std::string& what) {
  return absl::InternalError(absl::StrCat("state store: ", what, ": ", sqlite3_errmsg(db)));
}

// RAII for a prepared statement.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    absl::Status st = SqlError(db, absl::StrCat("open ", path));
    sqlite3_close(db);
    return st;
  }
  std::unique_ptr<Store> s(new Store(db));
  absl::MutexLock lock(&s->mu_);
  RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(s->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, record BLOB NOT NULL)"));
  RETURN_IF_ERROR(
      s->Exec("CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, record BLOB NOT NULL)"));
  RETURN_IF_ERROR(s->Exec(
      "CREATE TABLE IF NOT EXISTS grants (task_id TEXT, hash TEXT, PRIMARY KEY (task_id, hash))"));
  return s;
}

Store::~Store() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status st =
        absl::InternalError(absl::StrCat("state store: ", sql, ": ", err ? err : "?"));
    sqlite3_free(err);
    return st;
  }
  return absl::OkStatus();
}

absl::Status Store::PutBlob(const char* table, const std::string& id, const std::string& blob) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  std::string sql = absl::StrCat("INSERT OR REPLACE INTO ", table, " (id, record) VALUES (?, ?)");
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return SqlError(db_, sql);
  sqlite3_bind_text(st.s, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(st.s, 2, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return SqlError(db_, sql);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Store::Blobs(const char* table) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  std::string sql = absl::StrCat("SELECT record FROM ", table);
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return SqlError(db_, sql);
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    const void* p = sqlite3_column_blob(st.s, 0);
    int n = sqlite3_column_bytes(st.s, 0);
    out.emplace_back(static_cast<const char*>(p), n);
  }
  if (rc != SQLITE_DONE) return SqlError(db_, sql);
  return out;
}

absl::Status Store::Delete(const char* table, const char* column, const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  std::string sql = absl::StrCat("DELETE FROM ", table, " WHERE ", column, " = ?");
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK)
    return SqlError(db_, sql);
  sqlite3_bind_text(st.s, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return SqlError(db_, sql);
  return absl::OkStatus();
}

// A record's strings are made UTF-8 first (util/proto_utf8.h): one task's non-UTF-8 argument would
// otherwise make the record, and with it every restore, unreadable.
absl::Status Store::PutTask(const v1::TaskRecord& t) {
  if (!HasInvalidUtf8(t)) return PutBlob("tasks", t.id(), t.SerializeAsString());
  v1::TaskRecord safe = t;
  MakeUtf8Safe(&safe);
  return PutBlob("tasks", t.id(), safe.SerializeAsString());
}

absl::Status Store::DeleteTask(const std::string& id) {
  RETURN_IF_ERROR(Delete("tasks", "id", id));
  RETURN_IF_ERROR(Delete("grants", "task_id", id));
  for (const auto& a : Approvals().value_or(std::vector<v1::ApprovalRecord>{})) {
    if (a.task_id() == id) RETURN_IF_ERROR(Delete("approvals", "id", a.id()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::TaskRecord>> Store::Tasks() {
  ASSIGN_OR_RETURN(std::vector<std::string> blobs, Blobs("tasks"));
  std::vector<v1::TaskRecord> out;
  for (const std::string& b : blobs) {
    v1::TaskRecord t;
    if (!t.ParseFromString(b)) return absl::DataLossError("state store: unreadable task record");
    out.push_back(std::move(t));
  }
  return out;
}

absl::Status Store::PutApproval(const v1::ApprovalRecord& a) {
  if (!HasInvalidUtf8(a)) return PutBlob("approvals", a.id(), a.SerializeAsString());
  v1::ApprovalRecord safe = a;
  MakeUtf8Safe(&safe);
  return PutBlob("approvals", a.id(), safe.SerializeAsString());
}

absl::Status Store::DeleteApproval(const std::string& id) { return Delete("approvals", "id", id); }

absl::StatusOr<std::vector<v1::ApprovalRecord>> Store::Approvals() {
  ASSIGN_OR_RETURN(std::vector<std::string> blobs, Blobs("approvals"));
  std::vector<v1::ApprovalRecord> out;
  for (const std::string& b : blobs) {
    v1::ApprovalRecord a;
    if (!a.ParseFromString(b))
      return absl::DataLossError("state store: unreadable approval record");
    out.push_back(std::move(a));
  }
  return out;
}

absl::Status Store::PutGrant(const std::string& task_id, const std::string& hash) {
  absl::MutexLock lock(&mu_);
  Stmt st;
  const char* sql = "INSERT OR IGNORE INTO grants (task_id, hash) VALUES (?, ?)";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr) != SQLITE_OK) return SqlError(db_, sql);
  sqlite3_bind_text(st.s, 1, task_id.data(), static_cast<int>(task_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return SqlError(db_, sql);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::Grants() {
  absl::MutexLock lock(&mu_);
  Stmt st;
  const char* sql = "SELECT task_id, hash FROM grants";
  if (sqlite3_prepare_v2(db_, sql, -1, &st.s, nullptr) != SQLITE_OK) return SqlError(db_, sql);
  std::vector<std::pair<std::string, std::string>> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)),
                     reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1)));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, sql);
  return out;
}

}  // namespace writ::state
