// journal: the tamper-evident local record of what writd found and did. One append-only JSONL file
// of findings (verdict violation / needs_approval), actions, approval requests and credential
// revocations, hash-chained so that an edit, a removed or reordered line, a cut tail or a forged
// line is detected by VerifyJournal (and `writ audit verify`).
//
// Record format, one per line, exactly these keys in this order, no spaces:
//
//   {"seq":N,"prev":"<P>","event":<E>,"hash":"<H>"}
//
//   N  decimal sequence number, 1 for the first record of a file (a segment)
//   P  lowercase hex SHA-256 of the previous record's whole line (the bytes between the previous
//   line's
//      start and its '\n', exclusive); 64 '0' for seq 1
//   E  the event as native writ JSON (sinks::AppendJson), byte for byte
//   H  lowercase hex SHA-256 over the ASCII string  N "|" P "|" E  (decimal N, hex P, E's exact
//   bytes)
//
// H makes a record self-consistent; P ties it to its predecessor's complete line (including that
// line's H), so changing any byte of any record breaks either that record's H or its successor's P.
// What a local chain cannot show: the newest records removed whole (ship the journal or its head
// elsewhere for that); see docs/operations.md.
//
// Restart: Open reads the last two lines, checks the last record's hash and its link to the line
// before, and continues seq/prev from it. A tail that fails the check is never appended to or
// overwritten: the file is renamed to <path>.corrupt-<UTC time>, a new segment starts at seq 1, and
// the error is logged.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "util/fd.h"
#include "util/util.h"  // Sha256Hex
#include "writ/v1/event.pb.h"

namespace writ::journal {

inline constexpr absl::string_view kGenesisPrev =
    "0000000000000000000000000000000000000000000000000000000000000000";
// Longest record line Open and VerifyJournal accept. Events are bounded by the decoder (argv,
// paths); this bounds memory when reading a damaged or hostile file.
inline constexpr size_t kMaxRecordBytes = 1 << 20;

// When the journal calls fdatasync(2).
struct FsyncPolicy {
  enum class Kind { kAlways, kInterval, kNever };
  // kAlways: each Append call (writd's journal thread passes all it has queued) is on disk before
  // the next begins -- group commit, one fdatasync per batch. kInterval: a record appended more
  // than `interval` after the last sync is synced at once, later ones at the latest `interval`
  // after it (writd's default, 10ms: see docs/operations.md).
  Kind kind = Kind::kAlways;
  absl::Duration interval = absl::Seconds(1);  // kInterval: at most this long unsynced
};
// "always", "never", or a duration ("200ms", "1s") for at most that long between syncs.
absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view s);

struct JournalOptions {
  std::string path;
  FsyncPolicy fsync;
};

struct JournalStats {
  uint64_t records = 0;       // appended since Open
  uint64_t last_seq = 0;      // seq of the newest record in the file
  uint64_t write_errors = 0;  // Append failed (record not in the journal)
  uint64_t fsync_errors = 0;
  uint64_t fsyncs = 0;
  bool new_segment_after_corruption = false;
};

// Whether writd journals `ev`: verdict violation or needs_approval, kind action, kind
// approval_request, kind secret (a credential on a command line), kind credential with an operation
// starting with "revoke" (revoke, revoke_failed, revoke_queued).
bool ShouldJournal(const v1::Event& ev);

// H of a record (see the banner).
std::string RecordHash(uint64_t seq, absl::string_view prev, absl::string_view event_json);

class Journal {
 public:
  // Opens (creating 0600) and exclusively locks the file: a second writd on the same journal fails
  // here instead of interleaving two chains.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const JournalOptions& opts);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends one record. Thread-safe. On failure nothing of the record stays in the file (a partial
  // write is cut back) and the chain continues from the last good record; the error is counted.
  absl::Status Append(const v1::Event& ev);
  // Appends the records in order, then syncs once as the policy says (group commit: under a burst
  // of findings, one fdatasync per batch instead of one per record). A record that fails is left
  // out and counted, the rest are still written; returns the first error.
  absl::Status Append(absl::Span<const v1::Event> events);
  // fdatasync now (shutdown, or an interval policy that wants a bound).
  absl::Status Sync();
  // Interval policy: how long until unsynced records are due (zero: now); infinite when nothing is
  // unsynced or the policy is not an interval. The appending thread waits at most this long, then
  // calls SyncIfDue, so "at most that long unsynced" holds when appends stop too.
  absl::Duration UntilSyncDue() const;
  absl::Status SyncIfDue();

  JournalStats stats() const;
  const std::string& path() const { return path_; }
  // Set when Open moved a corrupt file aside: where it went and why.
  const std::string& quarantined_to() const { return quarantined_to_; }
  const std::string& quarantine_reason() const { return quarantine_reason_; }

 private:
  Journal(std::string path, FsyncPolicy fsync, Fd fd);
  absl::Status WriteLocked(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AppendLocked(absl::string_view event_json) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MaybeSyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const FsyncPolicy fsync_;
  std::string quarantined_to_;
  std::string quarantine_reason_;

  mutable absl::Mutex mu_;
  Fd fd_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::string prev_ ABSL_GUARDED_BY(mu_){kGenesisPrev};
  uint64_t size_ ABSL_GUARDED_BY(mu_) =
      0;  // bytes of complete records: where a failed write is cut
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a partial write could not be cut: refuse more
  absl::Time last_sync_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  std::string line_ ABSL_GUARDED_BY(mu_);  // reused: no allocation once grown
  JournalStats stats_ ABSL_GUARDED_BY(mu_);
};

// Result of checking a whole journal file.
struct VerifyResult {
  bool ok = false;
  uint64_t records = 0;  // ok: how many; not ok: how many good records precede the bad line
  uint64_t line = 0;     // not ok: 1-based line number of the first bad record
  std::string reason;    // not ok: why, starting with edited | removed | reordered | forged |
                         // truncated | bad json | malformed
};
// Reads `path` start to end. A Status error means the file could not be read (not found, I/O); a
// tampered file is an OK status with result.ok == false.
absl::StatusOr<VerifyResult> VerifyJournal(const std::string& path);

// Parses one record line (without '\n'). Exposed for tests and for tools that read the journal.
struct Record {
  uint64_t seq = 0;
  absl::string_view prev;
  absl::string_view event;
  absl::string_view hash;
};
// Error message says what is wrong ("bad json: ...", "malformed record: ...").
absl::StatusOr<Record> ParseRecord(absl::string_view line);

}  // namespace writ::journal
