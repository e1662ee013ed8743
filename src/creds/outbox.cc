#include "creds/outbox.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "creds/log.h"
#include "util/status_macros.h"

namespace writ::creds {

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Open(OutboxOptions options) {
  ASSIGN_OR_RETURN(auto db, SqliteDb::Open(options.path));
  RETURN_IF_ERROR(db->Exec(
      "CREATE TABLE IF NOT EXISTS outbox ("
      "  id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, task_id TEXT NOT NULL,"
      "  reason TEXT, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
      "  next_attempt_ms INTEGER NOT NULL, last_error TEXT, UNIQUE(provider, task_id));"
      "CREATE TABLE IF NOT EXISTS issued (provider TEXT NOT NULL, task_id TEXT NOT NULL,"
      "  PRIMARY KEY(provider, task_id));"));
  // Added after the first release: outboxes written before it get the column (0 = not reported).
  bool has_overdue = false;
  {
    ASSIGN_OR_RETURN(Statement q, db->Prepare("SELECT name FROM pragma_table_info('outbox')"));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      if (q.ColumnText(0) == "overdue_signalled") has_overdue = true;
    }
  }
  if (!has_overdue) {
    RETURN_IF_ERROR(
        db->Exec("ALTER TABLE outbox ADD COLUMN overdue_signalled INTEGER NOT NULL DEFAULT 0"));
  }
  return std::unique_ptr<Outbox>(new Outbox(std::move(options), std::move(db)));
}

Outbox::~Outbox() { Stop(); }

void Outbox::Register(CredentialProvider* p) {
  absl::MutexLock l(&mu_);
  providers_[p->config().name] = p;
}

void Outbox::SetResultHook(std::function<void(const OutboxResult&)> hook) {
  absl::MutexLock l(&mu_);
  hook_ = std::move(hook);
}

void Outbox::SetOverdueHook(std::function<void(const OverdueRevocation&)> hook) {
  absl::MutexLock l(&mu_);
  overdue_hook_ = std::move(hook);
}

absl::Status Outbox::RecordIssued(const std::string& provider, const std::string& task_id) {
  absl::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(Statement s,
                   db_->Prepare("INSERT OR IGNORE INTO issued(provider, task_id) VALUES(?,?)"));
  return s.Bind(1, provider).Bind(2, task_id).Run();
}

absl::Status Outbox::ForgetIssued(const std::string& provider, const std::string& task_id) {
  absl::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(Statement s,
                   db_->Prepare("DELETE FROM issued WHERE provider = ? AND task_id = ?"));
  return s.Bind(1, provider).Bind(2, task_id).Run();
}

absl::StatusOr<std::vector<std::string>> Outbox::EnqueueTask(const std::string& task_id,
                                                             const std::string& reason) {
  std::vector<std::string> providers;
  {
    absl::MutexLock l(&db_mu_);
    int64_t now = absl::ToUnixMillis(Now());
    RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    auto body = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT provider FROM issued WHERE task_id = ?"));
      q.Bind(1, task_id);
      for (;;) {
        ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        providers.push_back(q.ColumnText(0));
      }
      for (const auto& p : providers) {
        ASSIGN_OR_RETURN(Statement ins,
                         db_->Prepare("INSERT OR IGNORE INTO outbox(provider, task_id, reason, "
                                      "created_ms, next_attempt_ms) VALUES(?,?,?,?,?)"));
        RETURN_IF_ERROR(
            ins.Bind(1, p).Bind(2, task_id).Bind(3, reason).Bind(4, now).Bind(5, now).Run());
      }
      ASSIGN_OR_RETURN(Statement d, db_->Prepare("DELETE FROM issued WHERE task_id = ?"));
      return d.Bind(1, task_id).Run();
    };
    absl::Status st = body();
    if (!st.ok()) {
      (void)db_->Exec("ROLLBACK");
      return st;
    }
    RETURN_IF_ERROR(db_->Exec("COMMIT"));
  }
  if (!providers.empty()) Wake();
  return providers;
}

absl::Status Outbox::Enqueue(const std::string& provider, const std::string& task_id,
                             const std::string& reason) {
  int64_t now = absl::ToUnixMillis(Now());
  {
    absl::MutexLock l(&db_mu_);
    ASSIGN_OR_RETURN(Statement s,
                     db_->Prepare("INSERT OR IGNORE INTO outbox(provider, task_id, reason, "
                                  "created_ms, next_attempt_ms) VALUES(?,?,?,?,?)"));
    RETURN_IF_ERROR(
        s.Bind(1, provider).Bind(2, task_id).Bind(3, reason).Bind(4, now).Bind(5, now).Run());
  }
  Wake();
  return absl::OkStatus();
}

absl::Duration Outbox::Backoff(int attempts) const {
  double factor = std::pow(2.0, std::min(attempts - 1, 30));
  absl::Duration d = std::min(options_.base_backoff * factor, options_.max_backoff);
  if (options_.jitter > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> dist(1.0 - options_.jitter, 1.0 + options_.jitter);
    d = d * dist(rng);
  }
  return d;
}

absl::StatusOr<int> Outbox::RunOnce() {
  absl::MutexLock run(&run_mu_);
  struct Row {
    int64_t id;
    std::string provider, task_id, reason;
    int attempts;
  };
  std::vector<Row> due;
  {
    absl::MutexLock l(&db_mu_);
    ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare(
            "SELECT id, provider, task_id, reason, attempts FROM outbox WHERE next_attempt_ms <= ? "
            "ORDER BY next_attempt_ms LIMIT ?"));
    q.Bind(1, absl::ToUnixMillis(Now())).Bind(2, static_cast<int64_t>(options_.max_batch));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      due.push_back({q.ColumnInt(0), q.ColumnText(1), q.ColumnText(2), q.ColumnText(3),
                     static_cast<int>(q.ColumnInt(4))});
    }
  }
  int acked = 0;
  for (const Row& r : due) {
    CredentialProvider* p = nullptr;
    std::function<void(const OutboxResult&)> hook;
    {
      absl::MutexLock l(&mu_);
      auto it = providers_.find(r.provider);
      if (it != providers_.end()) p = it->second;
      hook = hook_;
    }
    OutboxResult res{r.id,           r.provider,       r.task_id,
                     r.attempts + 1, absl::OkStatus(), absl::InfinitePast()};
    // The provider call happens outside every lock: it may take seconds (network).
    res.status = p ? p->Revoke(r.task_id, r.reason)
                   : absl::FailedPreconditionError(
                         absl::StrCat("provider '", r.provider, "' is not configured"));
    {
      absl::MutexLock l(&db_mu_);
      if (res.status.ok()) {
        ASSIGN_OR_RETURN(Statement d, db_->Prepare("DELETE FROM outbox WHERE id = ?"));
        RETURN_IF_ERROR(d.Bind(1, r.id).Run());
        ++acked;
      } else {
        res.next_attempt = Now() + Backoff(res.attempts);
        ASSIGN_OR_RETURN(Statement u,
                         db_->Prepare("UPDATE outbox SET attempts = ?, next_attempt_ms = ?, "
                                      "last_error = ? WHERE id = ?"));
        RETURN_IF_ERROR(u.Bind(1, static_cast<int64_t>(res.attempts))
                            .Bind(2, absl::ToUnixMillis(res.next_attempt))
                            .Bind(3, std::string(res.status.message()))
                            .Bind(4, r.id)
                            .Run());
        Log()->warn("outbox: revoke task {} at {} failed (attempt {}): {}; retry in {}", r.task_id,
                    r.provider, res.attempts, res.status.ToString(),
                    absl::FormatDuration(res.next_attempt - Now()));
      }
    }
    if (hook) hook(res);
  }
  return acked;
}

absl::StatusOr<int64_t> Outbox::Depth() const {
  absl::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT COUNT(*) FROM outbox"));
  ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.ColumnInt(0) : 0;
}

absl::StatusOr<std::vector<FailingAtProvider>> Outbox::Failing() const {
  absl::MutexLock l(&db_mu_);
  ASSIGN_OR_RETURN(Statement q,
                   db_->Prepare("SELECT provider, COUNT(*), MIN(created_ms) FROM outbox "
                                "WHERE attempts > 0 GROUP BY provider ORDER BY provider"));
  std::vector<FailingAtProvider> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back({q.ColumnText(0), q.ColumnInt(1), absl::FromUnixMillis(q.ColumnInt(2))});
  }
  return out;
}

absl::StatusOr<int> Outbox::SignalOverdue() {
  if (options_.overdue_after <= absl::ZeroDuration()) return 0;
  absl::MutexLock run(&run_mu_);  // one reporter at a time: each entry is reported once
  std::vector<std::pair<int64_t, OverdueRevocation>> overdue;
  {
    absl::MutexLock l(&db_mu_);
    ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare(
            "SELECT id, provider, task_id, reason, created_ms, attempts, last_error FROM outbox "
            "WHERE attempts > 0 AND overdue_signalled = 0 AND created_ms <= ? ORDER BY "
            "created_ms"));
    q.Bind(1, absl::ToUnixMillis(Now() - options_.overdue_after));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      overdue.push_back(
          {q.ColumnInt(0),
           {q.ColumnText(1), q.ColumnText(2), q.ColumnText(3), absl::FromUnixMillis(q.ColumnInt(4)),
            static_cast<int>(q.ColumnInt(5)), q.ColumnText(6)}});
    }
  }
  if (overdue.empty()) return 0;
  std::function<void(const OverdueRevocation&)> hook;
  {
    absl::MutexLock l(&mu_);
    hook = overdue_hook_;
  }
  for (const auto& [id, o] : overdue) {
    Log()->error("outbox: revocation of task {} at {} has failed for {} ({} attempts): {}",
                 o.task_id, o.provider,
                 absl::FormatDuration(absl::Trunc(Now() - o.queued, absl::Milliseconds(1))),
                 o.attempts, o.last_error);
    if (hook) hook(o);
  }
  absl::MutexLock l(&db_mu_);
  for (const auto& [id, o] : overdue) {
    ASSIGN_OR_RETURN(Statement u,
                     db_->Prepare("UPDATE outbox SET overdue_signalled = 1 WHERE id = ?"));
    RETURN_IF_ERROR(u.Bind(1, id).Run());
  }
  return static_cast<int>(overdue.size());
}

void Outbox::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    for (;;) {
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stop_; };
        mu_.AwaitWithTimeout(absl::Condition(&ready), options_.poll);
        if (stop_) return;
        wake_ = false;
      }
      auto r = RunOnce();
      if (!r.ok()) Log()->error("outbox: {}", r.status().ToString());
      auto o = SignalOverdue();
      if (!o.ok()) Log()->error("outbox: overdue revocations: {}", o.status().ToString());
    }
  });
}

void Outbox::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Outbox::Wake() {
  absl::MutexLock l(&mu_);
  wake_ = true;
}

}  // namespace writ::creds
