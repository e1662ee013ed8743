// Output: where every event writd emits goes. Owns the sinks (SinkSet: JSONL/OCSF to file, stdout,
// syslog, HTTP, HEC), the hash-chained journal and its thread, and the `writ tail` subscribers.
//
// Threads and locks: Emit runs on the pipeline thread (batched records) and on any other (synthetic
// events); out_mu_ serialises encoding and submission to the sinks and the subscriber list, so the
// sinks see events in one order. Findings and actions are queued under journal_mu_ for the journal
// thread, which appends and fsyncs them in that order: a violation's fsync never holds up the
// pipeline. Tail runs on a control-connection thread and waits on its subscriber's own lock.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "creds/redact.h"
#include "daemon/seams.h"
#include "journal/journal.h"
#include "sinks/sink.h"
#include "writ/v1/api.pb.h"

namespace writ::daemon {

class Output final : public EventOutput {
 public:
  // `host` is stamped on every event; `boot_tag` prefixes synthetic event ids.
  Output(std::string host, std::string boot_tag);
  ~Output() override;
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  // The sinks (never null) and the journal (null: off). Before the first Emit.
  void Start(std::unique_ptr<sinks::SinkSet> sinks, std::unique_ptr<journal::Journal> journal);

  // The secret redaction every event goes through (null: the built-in rules with a per-process
  // key). Set in Start before any thread emits; it outlives the Output.
  void SetRedactor(const creds::Redactor* r) { redactor_ = r; }
  const creds::Redactor& redactor() const {
    return redactor_ ? *redactor_ : creds::DefaultRedactor();
  }

  // The enforcement rung in force ("lsm", or "tracepoint"; a string literal), named by every
  // task_start. Set in Daemon::Start once the programs are loaded, before any task starts, but
  // after the credential service's outbox thread may already emit: hence atomic.
  void SetRung(const char* rung) { rung_.store(rung, std::memory_order_release); }

  // Every event from now on also goes to `o` (null: none); `o` outlives the Output's emitters.
  void SetObserver(EventObserver* o) { observer_.store(o, std::memory_order_release); }

  v1::Event NewEvent(const char* kind) override;
  void Emit(v1::Event& ev, bool batch = false, bool redacted = false) override;
  // The pipeline's drained batch goes to the sinks (and its findings to the journal thread) as one.
  void Commit();

  // Streams every matching event the caller may see (`visible`; null: all) to a tail client on `fd`
  // until the client goes away or Stop.
  void Tail(int fd, const v1::TailRequest& filter, std::function<bool(const v1::Event&)> visible);

  // Shutdown, in this order: StopJournal writes every queued finding and action; Stop flushes the
  // sinks within `budget` (what is left is spooled or counted) and ends every tail stream.
  void StopJournal();
  void Stop(absl::Duration budget);
  // Ends every tail stream now (a stop was asked for: their connections are about to be shut down).
  void CloseTails();

  struct SinkRow {
    std::string name;
    sinks::SinkStats stats;
  };
  std::vector<SinkRow> SinkRows() const;
  const journal::Journal* journal() const { return journal_.get(); }
  uint64_t tail_drops() const { return tail_drops_.load(); }

 private:
  struct Subscriber {
    v1::TailRequest filter;
    std::function<bool(const v1::Event&)> visible;
    absl::Mutex mu;
    absl::CondVar cv;
    std::deque<std::string> frames ABSL_GUARDED_BY(mu);
    bool closed ABSL_GUARDED_BY(mu) = false;
    uint64_t dropped = 0;
  };
  void JournalLoop();
  void Publish(const v1::Event& ev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(out_mu_);

  const creds::Redactor* redactor_ = nullptr;
  std::atomic<const char*> rung_{nullptr};
  std::atomic<EventObserver*> observer_{nullptr};
  const std::string host_;
  const std::string boot_tag_;
  std::atomic<uint64_t> synthetic_seq_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> tail_drops_{0};

  mutable absl::Mutex out_mu_;
  std::unique_ptr<sinks::SinkSet> sinks_ ABSL_GUARDED_BY(out_mu_);
  std::list<std::shared_ptr<Subscriber>> subscribers_ ABSL_GUARDED_BY(out_mu_);

  // Set once in Start; Append is thread-safe (own lock, own fsync).
  std::unique_ptr<journal::Journal> journal_;
  static constexpr size_t kJournalQueueMax = 10000;
  absl::Mutex journal_mu_;
  std::deque<v1::Event> journal_queue_ ABSL_GUARDED_BY(journal_mu_);
  bool journal_stop_ ABSL_GUARDED_BY(journal_mu_) = false;
  // Set when the journal thread should take the queue: by Commit (once per drained batch: a wakeup
  // per record cost more than the append), by an Emit from any other thread, and when the queue is
  // full.
  bool journal_ready_ ABSL_GUARDED_BY(journal_mu_) = false;
  std::thread journal_thread_;
};

}  // namespace writ::daemon
