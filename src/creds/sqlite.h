// Minimal RAII over SQLite for the creds stores (revocations, outbox): open in WAL mode, exec, and
// prepared statements with positional binds. Not thread-safe: each owner serialises its own access.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace writ::creds {

class Statement {
 public:
  Statement(Statement&&) = default;
  Statement& operator=(Statement&&) = default;

  Statement& Bind(int idx, std::string_view v);
  Statement& Bind(int idx, int64_t v);
  Statement& Bind(int idx, double v);
  // Returns true while a row is available, false when done; error status on failure.
  absl::StatusOr<bool> Step();
  absl::Status Run();  // Step until done.
  std::string ColumnText(int col) const;
  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;

 private:
  friend class SqliteDb;
  struct Deleter {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  Statement(sqlite3* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, Deleter> stmt_;
};

class SqliteDb {
 public:
  // Opens (creating with mode 0600) `path`, sets WAL and synchronous=FULL: a revocation that was
  // acknowledged must survive a power cut.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  absl::Status Exec(std::string_view sql);
  absl::StatusOr<Statement> Prepare(std::string_view sql);
  sqlite3* raw() const { return db_.get(); }
  int64_t Changes() const { return sqlite3_changes64(db_.get()); }

 private:
  struct Deleter {
    void operator()(sqlite3* d) const { sqlite3_close_v2(d); }
  };
  explicit SqliteDb(sqlite3* d) : db_(d) {}
  std::unique_ptr<sqlite3, Deleter> db_;
};

}  // namespace writ::creds
