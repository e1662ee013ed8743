// Delivery sinks: each sink owns a thread, a bounded in-memory queue, retries with exponential
// backoff and (optionally) an on-disk spool, so Submit() never blocks the event pipeline. Every
// line that is not delivered is counted in a drop counter; nothing is lost silently.
//
// Delivery is at-least-once where a spool is configured: after a connection failure the tail of
// what was recently written on the broken connection is sent again, so receivers de-duplicate on
// the event's stable `id`. Without a spool, lines wait in memory (bounded) and are dropped,
// counted, when the queue is full.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "writ/v1/event.pb.h"

namespace YAML {
class Node;
}

namespace writ::sinks {

// Why a send attempt failed: indexes SinkStats::errors, exported as writ_sink_errors_total{reason}.
enum class SinkError { kConnect, kTlsVerify, kTls, kTimeout, kIo, kHttpStatus, kOther };
inline constexpr size_t kSinkErrorKinds = 7;
// "connect", "tls_verify", "tls", "timeout", "io", "http_status", "other".
const char* SinkErrorName(SinkError e);

struct SinkStats {
  uint64_t submitted = 0;           // lines handed to Submit()
  uint64_t delivered = 0;           // lines the transport accepted (resends count again)
  uint64_t dropped_queue_full = 0;  // in-memory queue full (and no spool, or spool full)
  uint64_t dropped_spool_full = 0;  // spool at spool_max_bytes
  uint64_t dropped_on_stop = 0;     // still undelivered at Stop() with nowhere to keep them
  uint64_t retries = 0;             // failed send attempts that will be retried
  uint64_t spooled = 0;             // lines written to the spool
  uint64_t replayed = 0;            // lines replayed from the spool
  uint64_t resent = 0;              // lines re-sent after a connection broke (may be duplicates)
  uint64_t queue_depth = 0;
  uint64_t spool_bytes = 0;               // bytes in the spool not yet replayed
  uint64_t errors[kSinkErrorKinds] = {};  // failed send attempts by cause; they sum to retries
  std::string last_error;
  uint64_t dropped() const { return dropped_queue_full + dropped_spool_full + dropped_on_stop; }
};

class Sink {
 public:
  virtual ~Sink();
  // Queues one encoded line (no trailing newline). Never blocks; a full queue drops and counts.
  virtual void Submit(std::string line) = 0;
  // The same from a view: the sink copies it into a line buffer it recycles once the line is
  // delivered, so the pipeline's steady state allocates nothing per event.
  virtual void SubmitCopy(std::string_view line) { Submit(std::string(line)); }
  // Batched hand-off, for one producer thread at a time: StageBuffer() returns an empty line buffer
  // to fill (no trailing newline), and Commit() queues every line staged since the last Commit with
  // one lock and at most one wakeup of the sink's thread. Lines are counted (submitted, dropped) at
  // Commit. Staged buffers are recycled: the steady state allocates nothing per line.
  std::string* StageBuffer() {
    if (nstaged_ == staged_.size()) staged_.emplace_back();
    std::string* b = &staged_[nstaged_++];
    b->clear();
    return b;
  }
  virtual void Commit() {
    for (size_t i = 0; i < nstaged_; ++i) SubmitCopy(staged_[i]);
    nstaged_ = 0;
  }
  virtual SinkStats stats() const = 0;
  // Waits up to max_wait for everything queued (and spooled) so far to be delivered.
  virtual void Flush(absl::Duration max_wait) = 0;
  // Flushes for up to `flush` (2 s by default), then stops the thread; undelivered lines go to the
  // spool or the drop counter. Idempotent; the destructor calls it.
  virtual void Stop(absl::Duration flush) = 0;
  void Stop() { Stop(absl::Seconds(2)); }

 protected:
  std::vector<std::string> staged_;  // [0, nstaged_) staged since the last Commit; the rest spare
  size_t nstaged_ = 0;
};

enum class Format { kJson, kOcsf };

struct TlsConfig {
  bool enabled = false;
  std::string ca;    // PEM CA bundle the server certificate must chain to; empty = system store
  std::string cert;  // client certificate (mutual TLS), optional
  std::string key;
  bool verify = true;
};

// A `nats` sink: JetStream publishing (docs/fleet.md). `tls` (ca, cert, key) applies too.
struct NatsSinkConfig {
  std::vector<std::string> servers;  // nats:// or tls:// URLs
  std::string subject;               // default writ.events.<hostname>
  std::string stream;                // required: the JetStream stream that captures `subject`
  bool create_stream = false;        // create `stream` if missing (else it must exist)
  int replicas = 1;                  // for create_stream
  std::string creds_file, nkey_seed_file, user, password;  // at most one of the three kinds
};

struct SinkConfig {
  std::string type;  // stdout, file, syslog, http, hec, nats
  Format format = Format::kJson;
  std::string path;     // file
  std::string address;  // syslog: host:port
  std::string url;      // http, hec: http(s)://host:port/path
  std::string token;    // hec
  TlsConfig tls;
  NatsSinkConfig nats;
  uint64_t max_bytes = 0;  // file: rotate past this size (0 = never)
  int max_files = 5;       // file: path.1 .. path.N kept
  bool fsync = false;      // file: fsync after each write batch
  std::string spool_dir;   // empty = no spool
  uint64_t spool_max_bytes = 64ull << 20;
  size_t queue_max = 10000;                       // in-memory lines
  size_t batch_max = 100;                         // lines per HTTP request / write
  absl::Duration linger = absl::Milliseconds(5);  // wait this long for a full batch
  absl::Duration backoff_min = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(5);        // connect and I/O
  absl::Duration resend_window = absl::Seconds(2);  // syslog: re-send this recent tail on a break
  std::string name;  // for logs, stats and the spool file name; defaults to "<type>-<index>"
  // Nice value of the sink's thread (not a YAML key: writd passes its pipeline_nice, so delivery
  // keeps up with the pipeline that feeds it). 0 leaves the creator's.
  int thread_nice = 0;
};

// Parses one sink entry. `where` prefixes errors, e.g. "writd.yaml:12: sinks[2]".
absl::StatusOr<SinkConfig> ParseSinkConfig(const YAML::Node& node, const std::string& file,
                                           int index);

absl::StatusOr<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config);

// One file sink (path "-" = stdout) without YAML, e.g. for `writ tail --jsonl`.
absl::StatusOr<std::unique_ptr<Sink>> MakeFileSink(const std::string& path, Format format,
                                                   int thread_nice = 0);

// Fans events out to several sinks; each event is encoded once per format in use.
class SinkSet {
 public:
  struct Entry {
    std::unique_ptr<Sink> sink;
    Format format;
    std::string name;
  };
  explicit SinkSet(std::vector<Entry> entries);
  ~SinkSet();

  // Encodes and submits to every sink. Not thread-safe: one thread at a time (the daemon serialises
  // its callers).
  void Submit(const writ::v1::Event& ev) {
    Stage(ev);
    Commit();
  }
  // The same, batched: the encoded lines wait in each sink's staging buffers until Commit() (or
  // Flush/Stop), which hands them over with one lock per sink instead of one per event. Commits by
  // itself every kCommitEvery events, so staging stays bounded.
  void Stage(const writ::v1::Event& ev);
  void Commit();
  static constexpr size_t kCommitEvery = 128;
  void Flush(absl::Duration max_wait);
  // Flushes every sink within one shared budget (a receiver that is down must not multiply shutdown
  // time by the number of sinks), then stops them all.
  void Stop(absl::Duration flush_budget = absl::Seconds(2));
  size_t size() const { return entries_.size(); }
  const std::string& name(size_t i) const { return entries_[i].name; }
  SinkStats stats(size_t i) const { return entries_[i].sink->stats(); }
  Sink* sink(size_t i) { return entries_[i].sink.get(); }

 private:
  std::vector<Entry> entries_;
  size_t staged_ = 0;  // events staged since the last Commit
};

// `sinks` is the YAML sequence under `sinks:`; errors read "FILE:LINE: sinks[i].field: ...".
absl::StatusOr<std::unique_ptr<SinkSet>> MakeSinkSet(const YAML::Node& sinks,
                                                     const std::string& file_for_errors);

}  // namespace writ::sinks
