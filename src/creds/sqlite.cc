#include "creds/sqlite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace writ::creds {
namespace {
absl::Status SqlError(sqlite3* db, std::string_view what) {
  return absl::InternalError(
      absl::StrCat("sqlite ", std::string(what), ": ", db ? sqlite3_errmsg(db) : "?"));
}
}  // namespace

Statement& Statement::Bind(int idx, std::string_view v) {
  sqlite3_bind_text(stmt_.get(), idx, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::Bind(int idx, int64_t v) {
  sqlite3_bind_int64(stmt_.get(), idx, v);
  return *this;
}
Statement& Statement::Bind(int idx, double v) {
  sqlite3_bind_double(stmt_.get(), idx, v);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqlError(db_, "step");
}

absl::Status Statement::Run() {
  for (;;) {
    auto r = Step();
    if (!r.ok()) return r.status();
    if (!*r) return absl::OkStatus();
  }
}

std::string Statement::ColumnText(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_.get(), col);
  return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
}
int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
double Statement::ColumnDouble(int col) const { return sqlite3_column_double(stmt_.get(), col); }

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  // Create the file ourselves so it is 0600 from the first byte (sqlite would use the umask).
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  ::close(fd);
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<SqliteDb> db(new SqliteDb(raw));
  if (rc != SQLITE_OK) return SqlError(raw, absl::StrCat("open ", path));
  sqlite3_busy_timeout(raw, 2000);
  auto st = db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  if (!st.ok()) return st;
  return db;
}

absl::Status SqliteDb::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite exec: ", msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, nullptr) !=
      SQLITE_OK) {
    return SqlError(db_.get(), absl::StrCat("prepare ", std::string(sql)));
  }
  return Statement(db_.get(), s);
}

}  // namespace writ::creds
