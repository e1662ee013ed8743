#include "daemon/output.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/framing.h"
#include "util/proto_utf8.h"
#include "util/util.h"

namespace writ::daemon {

Output::Output(std::string host, std::string boot_tag)
    : host_(std::move(host)), boot_tag_(std::move(boot_tag)) {
  absl::MutexLock lock(&out_mu_);
  sinks_ = std::make_unique<sinks::SinkSet>(std::vector<sinks::SinkSet::Entry>{});
}

Output::~Output() {
  StopJournal();
  absl::MutexLock lock(&out_mu_);
  if (sinks_) sinks_->Stop();
}

void Output::Start(std::unique_ptr<sinks::SinkSet> sinks,
                   std::unique_ptr<journal::Journal> journal) {
  {
    absl::MutexLock lock(&out_mu_);
    sinks_ = std::move(sinks);
  }
  journal_ = std::move(journal);
  if (journal_) journal_thread_ = std::thread([this] { JournalLoop(); });
}

v1::Event Output::NewEvent(const char* kind) {
  v1::Event ev;
  int64_t now = absl::ToUnixNanos(absl::Now());
  ev.set_id(absl::StrCat(boot_tag_, "-s", absl::Hex(now), "-", synthetic_seq_.fetch_add(1)));
  AppendRfc3339Nanos(now, ev.mutable_time());
  ev.set_ktime_ns(static_cast<uint64_t>(NowBootNs()));
  ev.set_kind(kind);
  if (absl::string_view(kind) == "task_start") {
    if (const char* rung = rung_.load(std::memory_order_acquire)) ev.mutable_task()->set_rung(rung);
  }
  return ev;
}

void Output::JournalLoop() {
  std::vector<v1::Event> batch;
  for (;;) {
    bool sync_due = false;
    {
      absl::MutexLock lock(&journal_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(journal_mu_) {
        return journal_stop_ || journal_ready_;
      };
      // An interval policy's unsynced tail is due at a deadline even when no record follows it.
      sync_due = !journal_mu_.AwaitWithTimeout(absl::Condition(&ready), journal_->UntilSyncDue());
      if (!sync_due) {
        if (journal_queue_.empty() && journal_stop_) return;  // everything queued is written
        journal_ready_ = false;
        batch.clear();
        while (!journal_queue_.empty()) {
          batch.push_back(std::move(journal_queue_.front()));
          journal_queue_.pop_front();
        }
      }
    }
    if (sync_due) {
      (void)journal_->SyncIfDue();  // errors are counted inside
    } else {
      (void)journal_->Append(batch);  // synced as the policy says; errors are counted inside
    }
  }
}

void Output::StopJournal() {
  {
    absl::MutexLock lock(&journal_mu_);
    journal_stop_ = true;
  }
  if (journal_thread_.joinable()) journal_thread_.join();
}

void Output::CloseTails() {
  stopping_.store(true);
  absl::MutexLock lock(&out_mu_);
  for (auto& s : subscribers_) {
    absl::MutexLock l(&s->mu);
    s->closed = true;
    s->cv.SignalAll();
  }
}

void Output::Stop(absl::Duration budget) {
  StopJournal();
  {
    absl::MutexLock lock(&out_mu_);
    // One budget for all sinks, so the service stops in bounded time; whatever is undelivered by
    // then goes to each sink's spool (or its drop counter), nothing is lost silently.
    sinks_->Stop(budget);
  }
  CloseTails();
}

void Output::Commit() {
  if (journal_) {
    absl::MutexLock lock(&journal_mu_);
    if (!journal_queue_.empty()) journal_ready_ = true;
  }
  absl::MutexLock lock(&out_mu_);
  sinks_->Commit();
}

void Output::Emit(v1::Event& ev, bool batch, bool redacted) {
  // Nothing leaves writd with a secret in it: not the journal, a sink, `writ tail` or a log line.
  if (!redacted) redactor().RedactEvent(&ev);
  ev.set_host(host_);
  // Queued before the sinks get the event, appended (and fsynced) by the journal thread in this
  // order.
  if (journal_ && journal::ShouldJournal(ev)) {
    absl::MutexLock lock(&journal_mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(journal_mu_) {
      return journal_stop_ || journal_queue_.size() < kJournalQueueMax;
    };
    journal_mu_.Await(absl::Condition(&room));  // a stalled disk slows writd; nothing is dropped
    if (!journal_stop_) {
      journal_queue_.push_back(ev);
      // The pipeline's batched records wait for its Commit; anything else goes now.
      if (!batch || journal_queue_.size() >= kJournalQueueMax) journal_ready_ = true;
    } else {
      (void)journal_->Append(ev);  // after StopJournal (shutdown): write it here
    }
  }
  absl::MutexLock lock(&out_mu_);
  if (batch) {
    sinks_->Stage(ev);
  } else {
    sinks_->Submit(ev);  // commits whatever the pipeline staged before it too: order is kept
  }
  if (!subscribers_.empty()) Publish(ev);
  if (EventObserver* o = observer_.load(std::memory_order_acquire)) o->Observe(ev);
}

void Output::Publish(const v1::Event& ev) {
  const bool violation = ev.verdict() == "violation" || ev.verdict() == "needs_approval";
  std::string frame;
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    Subscriber& s = **it;
    {
      absl::MutexLock l(&s.mu);
      if (s.closed) {
        it = subscribers_.erase(it);
        continue;
      }
    }
    ++it;
    if (s.filter.violations_only() && !violation) continue;
    if (!s.filter.agent().empty() && s.filter.agent() != ev.agent().spiffe_id()) continue;
    if (!s.filter.task().empty() && s.filter.task() != ev.agent().task_id()) continue;
    if (s.visible && !s.visible(ev)) continue;
    if (frame.empty()) {
      v1::Response r;
      *r.mutable_event() = ev;
      MakeUtf8Safe(&r);  // a task's non-UTF-8 file name must not make the frame unreadable
      frame = r.SerializeAsString();
    }
    absl::MutexLock l(&s.mu);
    if (s.frames.size() >= 10000) {
      s.dropped++;
      tail_drops_++;
      continue;
    }
    s.frames.push_back(frame);
    s.cv.Signal();
  }
}

void Output::Tail(int fd, const v1::TailRequest& filter,
                  std::function<bool(const v1::Event&)> visible) {
  auto sub = std::make_shared<Subscriber>();
  sub->filter = filter;
  sub->visible = std::move(visible);
  {
    absl::MutexLock lock(&out_mu_);
    subscribers_.push_back(sub);
  }
  (void)api::WriteFrame(fd, v1::Response());  // accepted
  for (;;) {
    std::deque<std::string> batch;
    {
      absl::MutexLock l(&sub->mu);
      while (sub->frames.empty() && !sub->closed && !stopping_.load()) {
        sub->cv.WaitWithTimeout(&sub->mu, absl::Milliseconds(200));
        // Detect a client that went away while idle.
        char b;
        if (::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) sub->closed = true;
      }
      if (sub->closed || stopping_.load()) break;
      batch.swap(sub->frames);
    }
    for (const std::string& f : batch) {
      if (!api::WriteFrameBytes(fd, f).ok()) {
        absl::MutexLock l(&sub->mu);
        sub->closed = true;
        return;
      }
    }
  }
  absl::MutexLock l(&sub->mu);
  sub->closed = true;
}

std::vector<Output::SinkRow> Output::SinkRows() const {
  std::vector<SinkRow> rows;
  absl::MutexLock lock(&out_mu_);
  for (size_t i = 0; i < sinks_->size(); i++) rows.push_back({sinks_->name(i), sinks_->stats(i)});
  return rows;
}

}  // namespace writ::daemon
