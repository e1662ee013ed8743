// Durable outbox for external revocations. A revocation is written to SQLite
// (<state_dir>/outbox.db) before it is attempted, and retried with capped exponential backoff until
// the provider acknowledges it, across daemon restarts. Depth() and Failing() are for status and
// metrics: a growing depth means some system still honours credentials of a task that has ended;
// SignalOverdue() says so once per revocation that kept failing for longer than overdue_after.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "creds/keystore.h"
#include "creds/provider.h"
#include "creds/sqlite.h"

namespace writ::creds {

struct OutboxOptions {
  std::string path;  // SQLite file
  absl::Duration base_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Minutes(5);
  double jitter =
      0.2;  // ± fraction of each delay, so many failing entries do not retry in lockstep
  absl::Duration poll = absl::Milliseconds(500);
  int max_batch = 32;  // entries attempted per RunOnce
  // A revocation that has failed and is still unacknowledged this long after it was queued is
  // reported once through the overdue hook (a live credential outlived its task). Zero disables.
  absl::Duration overdue_after = absl::Minutes(5);
  Clock clock;
};

struct OutboxResult {
  int64_t id = 0;
  std::string provider;
  std::string task_id;
  int attempts = 0;  // including this one
  absl::Status status;
  absl::Time next_attempt;  // when not ok
};

// Revocations at one provider that failed at least once and are not acknowledged yet.
struct FailingAtProvider {
  std::string provider;
  int64_t count = 0;
  absl::Time oldest_queued = absl::InfiniteFuture();  // when the oldest of them was queued
};

// A failing revocation that crossed OutboxOptions::overdue_after; reported once per entry, ever.
struct OverdueRevocation {
  std::string provider;
  std::string task_id;
  std::string reason;      // why it was revoked
  absl::Time queued;       // when it was queued
  int attempts = 0;        // failed so far
  std::string last_error;  // of the last attempt
};

class Outbox {
 public:
  static absl::StatusOr<std::unique_ptr<Outbox>> Open(OutboxOptions options);
  ~Outbox();

  // Providers must outlive the outbox (or Stop()). Entries for unregistered providers wait.
  void Register(CredentialProvider* provider);
  void SetResultHook(std::function<void(const OutboxResult&)> hook);
  // Called (from the retry thread, or the caller of SignalOverdue) once per overdue revocation.
  void SetOverdueHook(std::function<void(const OverdueRevocation&)> hook);

  // Durably remembers that `provider` issued something to `task_id`, so EnqueueTask knows whom to
  // call even after a restart.
  absl::Status RecordIssued(const std::string& provider, const std::string& task_id);
  // Undoes RecordIssued when issuing provably created nothing (the provider was unreachable).
  absl::Status ForgetIssued(const std::string& provider, const std::string& task_id);
  // Enqueues a revocation at every provider recorded for the task; returns their names.
  absl::StatusOr<std::vector<std::string>> EnqueueTask(const std::string& task_id,
                                                       const std::string& reason);
  // Durably records "revoke task at provider" (deduplicated per provider+task); due immediately.
  absl::Status Enqueue(const std::string& provider, const std::string& task_id,
                       const std::string& reason);
  // Attempts every due entry once (at most max_batch); returns how many were acknowledged.
  absl::StatusOr<int> RunOnce();
  absl::StatusOr<int64_t> Depth() const;
  // Per provider with at least one failing revocation, by provider name.
  absl::StatusOr<std::vector<FailingAtProvider>> Failing() const;
  // Reports every failing revocation older than overdue_after that was not reported yet, then marks
  // it durably (a restart does not report it again; a crash between the two reports it twice rather
  // than never); returns how many. The retry thread calls it after each RunOnce.
  absl::StatusOr<int> SignalOverdue();

  // Background retry thread. Wake() makes it run without waiting for the poll period.
  void Start();
  void Stop();
  void Wake();

 private:
  explicit Outbox(OutboxOptions o, std::unique_ptr<SqliteDb> db)
      : options_(std::move(o)), db_(std::move(db)) {}
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  absl::Duration Backoff(int attempts) const;

  const OutboxOptions options_;
  mutable absl::Mutex db_mu_;
  std::unique_ptr<SqliteDb> db_ ABSL_GUARDED_BY(db_mu_);
  absl::Mutex run_mu_;  // one RunOnce at a time (thread and callers)
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, CredentialProvider*> providers_ ABSL_GUARDED_BY(mu_);
  std::function<void(const OutboxResult&)> hook_ ABSL_GUARDED_BY(mu_);
  std::function<void(const OverdueRevocation&)> overdue_hook_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace writ::creds
