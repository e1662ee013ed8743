#include "journal/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "openssl/evp.h"
#include "sinks/json_encoder.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::journal {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("journal");
  return l;
}

constexpr absl::string_view kSeqKey = "{\"seq\":";
constexpr absl::string_view kPrevKey = ",\"prev\":\"";
constexpr absl::string_view kEventKey = "\",\"event\":";
constexpr absl::string_view kHashKey = ",\"hash\":\"";
constexpr absl::string_view kEnd = "\"}";
constexpr size_t kHexLen = 64;

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void AppendHex(const unsigned char* p, size_t n, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out->push_back(kDigits[p[i] >> 4]);
    out->push_back(kDigits[p[i] & 15]);
  }
}

// Writes all of `data` at the end of the (O_APPEND) file, retrying short writes and EINTR.
absl::Status WriteAll(int fd, absl::string_view data) {
  size_t off = 0;
  // Bounded: each iteration either writes at least one byte or fails.
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write journal");
    }
    if (n == 0) return absl::DataLossError("write journal: wrote 0 bytes");
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PreadAll(int fd, char* buf, size_t n, off_t at) {
  size_t off = 0;
  while (off < n) {
    ssize_t r = pread(fd, buf + off, n - off, at + static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read journal");
    }
    if (r == 0) return absl::DataLossError("read journal: file shrank while reading");
    off += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

void SyncDir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return;
  (void)fsync(dfd.get());  // best effort: the records themselves are synced by the policy
}

// Checks the end of an existing journal: the last record is complete, self-consistent and linked to
// the line before it. On success sets *seq / *prev to continue the chain.
absl::Status CheckTail(int fd, uint64_t size, uint64_t* seq, std::string* prev) {
  const uint64_t window = std::min<uint64_t>(size, 2 * (kMaxRecordBytes + 1));
  std::string buf(window, '\0');
  RETURN_IF_ERROR(PreadAll(fd, buf.data(), window, static_cast<off_t>(size - window)));
  const bool whole_file = window == size;
  if (buf.back() != '\n') {
    return absl::DataLossError("truncated: the last record has no trailing newline");
  }
  absl::string_view all(buf.data(), buf.size() - 1);
  size_t nl = all.rfind('\n');
  if (nl == absl::string_view::npos && !whole_file) {
    return absl::DataLossError(
        absl::StrCat("malformed record: the last line is longer than ", kMaxRecordBytes, " bytes"));
  }
  absl::string_view last = nl == absl::string_view::npos ? all : all.substr(nl + 1);
  ASSIGN_OR_RETURN(Record r, ParseRecord(last));
  if (RecordHash(r.seq, r.prev, r.event) != r.hash) {
    return absl::DataLossError("edited: the last record's hash does not match its content");
  }
  if (nl == absl::string_view::npos) {
    if (r.seq != 1 || r.prev != kGenesisPrev) {
      return absl::DataLossError("removed: the only record is not seq 1 with the genesis prev");
    }
  } else {
    absl::string_view before = all.substr(0, nl);
    size_t nl2 = before.rfind('\n');
    if (nl2 == absl::string_view::npos && !whole_file) {
      return absl::DataLossError(absl::StrCat(
          "malformed record: the second-to-last line is longer than ", kMaxRecordBytes, " bytes"));
    }
    absl::string_view prev_line = nl2 == absl::string_view::npos ? before : before.substr(nl2 + 1);
    auto pr = ParseRecord(prev_line);
    if (!pr.ok()) {
      return absl::DataLossError(absl::StrCat("second-to-last record: ", pr.status().message()));
    }
    if (pr->seq + 1 != r.seq) {
      return absl::DataLossError(absl::StrCat("the last record has seq ", r.seq, " after seq ",
                                              pr->seq, " (removed or reordered)"));
    }
    if (Sha256Hex(prev_line) != r.prev) {
      return absl::DataLossError(
          "forged: the last record's prev does not match the line before it");
    }
  }
  *seq = r.seq;
  *prev = Sha256Hex(last);
  return absl::OkStatus();
}

std::string CompactUtc() {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone());
}

// Reads `path` line by line with a bounded line length. Not thread-safe; one per verification.
class LineReader {
 public:
  explicit LineReader(FILE* f) : f_(f) {}
  ~LineReader() { free(buf_); }
  // Returns false at EOF. *newline tells whether the line ended with '\n'; *too_long when it
  // exceeded kMaxRecordBytes (the rest of that line is consumed).
  bool Next(absl::string_view* line, bool* newline, bool* too_long) {
    ssize_t n = getline(&buf_, &cap_, f_);
    if (n < 0) return false;
    *newline = n > 0 && buf_[n - 1] == '\n';
    size_t len = static_cast<size_t>(n) - (*newline ? 1 : 0);
    *too_long = len > kMaxRecordBytes;
    *line = absl::string_view(buf_, len);
    return true;
  }

 private:
  FILE* f_;
  char* buf_ = nullptr;
  size_t cap_ = 0;
};

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

// Only the sequence number: enough to tell "reordered" from "removed".
bool PeekSeq(absl::string_view line, uint64_t* seq) {
  if (!absl::StartsWith(line, kSeqKey)) return false;
  line.remove_prefix(kSeqKey.size());
  size_t end = line.find(',');
  if (end == absl::string_view::npos) return false;
  return absl::SimpleAtoi(line.substr(0, end), seq);
}

// Line number (1-based) of the first line after `after_line` holding `seq`, or 0.
uint64_t FindSeq(const std::string& path, uint64_t after_line, uint64_t seq) {
  FilePtr f(fopen(path.c_str(), "re"));
  if (!f) return 0;
  LineReader r(f.get());
  absl::string_view line;
  bool nl, too_long;
  uint64_t n = 0;
  while (r.Next(&line, &nl, &too_long)) {
    ++n;
    uint64_t s;
    if (n > after_line && PeekSeq(line, &s) && s == seq) return n;
  }
  return 0;
}

}  // namespace

absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view s) {
  FsyncPolicy p;
  if (s == "always") return p;
  if (s == "never") {
    p.kind = FsyncPolicy::Kind::kNever;
    return p;
  }
  auto d = ParseDuration(s);
  if (!d.ok() || *d <= absl::ZeroDuration() || *d > absl::Minutes(10)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", s, "\" is not always, never, or a duration between 1ms and 10m (e.g. 500ms)"));
  }
  p.kind = FsyncPolicy::Kind::kInterval;
  p.interval = *d;
  return p;
}

bool ShouldJournal(const v1::Event& ev) {
  const std::string& v = ev.verdict();
  if (v == "violation" || v == "needs_approval") return true;
  const std::string& k = ev.kind();
  if (k == "action" || k == "approval_request" || k == "secret") return true;
  return k == "credential" && absl::StartsWith(ev.credential().operation(), "revoke");
}

std::string RecordHash(uint64_t seq, absl::string_view prev, absl::string_view event_json) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string seq_s = absl::StrCat(seq);
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, seq_s.data(), seq_s.size());
  EVP_DigestUpdate(ctx, "|", 1);
  EVP_DigestUpdate(ctx, prev.data(), prev.size());
  EVP_DigestUpdate(ctx, "|", 1);
  EVP_DigestUpdate(ctx, event_json.data(), event_json.size());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string out;
  out.reserve(2 * len);
  AppendHex(md, len, &out);
  return out;
}

absl::StatusOr<Record> ParseRecord(absl::string_view line) {
  auto bad = [line](absl::string_view what) {
    // Tell a line that is not JSON at all from a JSON line that is not a journal record.
    if (!nlohmann::json::accept(line)) return absl::DataLossError(absl::StrCat("bad json: ", what));
    return absl::DataLossError(absl::StrCat("malformed record: ", what));
  };
  if (line.empty()) return absl::DataLossError("bad json: empty line");
  Record r;
  absl::string_view s = line;
  if (!absl::ConsumePrefix(&s, kSeqKey)) return bad("does not start with {\"seq\":");
  size_t digits = 0;
  while (digits < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[digits]))) digits++;
  if (digits == 0 || digits > 20 || !absl::SimpleAtoi(s.substr(0, digits), &r.seq) || r.seq == 0) {
    return bad("seq is not a positive integer");
  }
  s.remove_prefix(digits);
  if (!absl::ConsumePrefix(&s, kPrevKey) || s.size() < kHexLen) return bad("no \"prev\" after seq");
  r.prev = s.substr(0, kHexLen);
  s.remove_prefix(kHexLen);
  if (!IsLowerHex(r.prev)) return bad("prev is not 64 lowercase hex digits");
  if (!absl::ConsumePrefix(&s, kEventKey)) return bad("no \"event\" after prev");
  // The tail is fixed-size, so the event is everything between the two.
  const size_t tail = kHashKey.size() + kHexLen + kEnd.size();
  if (s.size() < tail + 2) return bad("record ends before \"hash\"");
  absl::string_view t = s.substr(s.size() - tail);
  r.event = s.substr(0, s.size() - tail);
  if (!absl::ConsumePrefix(&t, kHashKey) || !absl::EndsWith(t, kEnd)) {
    return bad("does not end with ,\"hash\":\"<64 hex>\"}");
  }
  r.hash = t.substr(0, kHexLen);
  if (!IsLowerHex(r.hash)) return bad("hash is not 64 lowercase hex digits");
  if (r.event.front() != '{' || !nlohmann::json::accept(r.event)) {
    return absl::DataLossError("bad json: event is not a JSON object");
  }
  return r;
}

// ---- Journal ------------------------------------------------------------------------------------

Journal::Journal(std::string path, FsyncPolicy fsync, Fd fd)
    : path_(std::move(path)), fsync_(fsync), fd_(std::move(fd)), last_sync_(absl::InfinitePast()) {}

Journal::~Journal() {
  absl::MutexLock lock(&mu_);
  if (fd_.valid() && dirty_) (void)fdatasync(fd_.get());
  fd_.Reset();  // releases the flock
}

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& opts) {
  if (opts.path.empty()) return absl::InvalidArgumentError("journal: empty path");
  std::error_code ec;
  auto dir = std::filesystem::path(opts.path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);

  std::string quarantined_to, why;
  // At most two rounds: the existing file, then (after quarantine) a fresh one.
  for (int round = 0; round < 2; round++) {
    Fd fd(open(opts.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open journal ", opts.path));
    if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err == EWOULDBLOCK) {
        return absl::FailedPreconditionError(absl::StrCat(
            "journal ", opts.path, " is locked by another process (is another writd running?)"));
      }
      return ErrnoStatus(err, absl::StrCat("lock journal ", opts.path));
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) {
      int err = errno;
      return ErrnoStatus(err, absl::StrCat("stat journal ", opts.path));
    }
    uint64_t seq = 0;
    std::string prev(kGenesisPrev);
    absl::Status tail = absl::OkStatus();
    if (st.st_size > 0) tail = CheckTail(fd.get(), static_cast<uint64_t>(st.st_size), &seq, &prev);
    if (tail.ok()) {
      std::unique_ptr<Journal> j(new Journal(opts.path, opts.fsync, std::move(fd)));
      {
        absl::MutexLock lock(&j->mu_);
        j->seq_ = seq;
        j->prev_ = prev;
        j->size_ = static_cast<uint64_t>(st.st_size);
        j->stats_.last_seq = seq;
        j->stats_.new_segment_after_corruption = !quarantined_to.empty();
      }
      j->quarantined_to_ = quarantined_to;
      j->quarantine_reason_ = why;
      if (st.st_size == 0) SyncDir(opts.path);
      Log()->info("journal {}: {} (fsync {})", opts.path,
                  seq ? absl::StrCat("continuing after seq ", seq) : std::string("new segment"),
                  opts.fsync.kind == FsyncPolicy::Kind::kAlways ? "always"
                  : opts.fsync.kind == FsyncPolicy::Kind::kNever
                      ? "never"
                      : absl::FormatDuration(opts.fsync.interval));
      return j;
    }
    if (!absl::IsDataLoss(tail)) {  // I/O error: do not guess, do not move anything
      return tail;
    }
    if (round == 1) break;
    // Corrupt tail: keep the evidence, never write after it. Rename while holding the lock.
    why = std::string(tail.message());
    std::string base = absl::StrCat(opts.path, ".corrupt-", CompactUtc());
    quarantined_to = base;
    for (int i = 1; std::filesystem::exists(quarantined_to, ec) && i < 100; i++) {
      quarantined_to = absl::StrCat(base, "-", i);
    }
    if (rename(opts.path.c_str(), quarantined_to.c_str()) != 0) {
      int err = errno;
      return ErrnoStatus(err, absl::StrCat("journal ", opts.path, " has a corrupt tail (", why,
                                           ") and could not be moved aside"));
    }
    fd.Reset();
    SyncDir(opts.path);
    Log()->error(
        "JOURNAL TAMPERED OR DAMAGED: {}: {}. Moved it to {} (kept as evidence; check it with "
        "`writ audit verify {}`); starting a new journal segment at seq 1",
        opts.path, why, quarantined_to, quarantined_to);
  }
  return absl::DataLossError(absl::StrCat("journal ", opts.path, ": a fresh segment is corrupt"));
}

absl::Status Journal::WriteLocked(const std::string& line) {
  absl::Status st = WriteAll(fd_.get(), line);
  if (st.ok()) return st;
  // Cut a partial record so the file stays a valid chain; if that fails, the next start
  // quarantines.
  if (ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) {
    broken_ = true;
    Log()->error("journal {}: a partial record could not be removed ({}); refusing further appends",
                 path_, strerror(errno));
  }
  return st;
}

absl::Status Journal::Append(const v1::Event& ev) { return Append(absl::MakeConstSpan(&ev, 1)); }

absl::Status Journal::Append(absl::Span<const v1::Event> events) {
  thread_local std::string event_json;
  absl::MutexLock lock(&mu_);
  absl::Status first_error;
  bool wrote = false;
  for (const v1::Event& ev : events) {
    event_json.clear();
    sinks::AppendJson(ev, &event_json);
    absl::Status st = AppendLocked(event_json);
    if (st.ok()) {
      wrote = true;
    } else if (first_error.ok()) {
      first_error = st;
    }
  }
  // Group commit: one fdatasync for the whole batch, after its last record is written.
  if (wrote) {
    if (absl::Status st = MaybeSyncLocked(); !st.ok() && first_error.ok()) first_error = st;
  }
  return first_error;
}

absl::Status Journal::AppendLocked(absl::string_view event_json) {
  if (!fd_.valid() || broken_) {
    stats_.write_errors++;
    return absl::FailedPreconditionError(absl::StrCat("journal ", path_, " is not writable"));
  }
  const uint64_t seq = seq_ + 1;
  line_.clear();
  absl::StrAppend(&line_, kSeqKey, seq, kPrevKey, prev_, kEventKey, event_json, kHashKey,
                  RecordHash(seq, prev_, event_json), kEnd);
  if (line_.size() > kMaxRecordBytes) {
    stats_.write_errors++;
    return absl::InvalidArgumentError(
        absl::StrCat("journal record of ", line_.size(), " bytes exceeds ", kMaxRecordBytes));
  }
  std::string next_prev = Sha256Hex(line_);
  line_.push_back('\n');
  if (absl::Status st = WriteLocked(line_); !st.ok()) {
    uint64_t n = ++stats_.write_errors;
    if (n == 1 || n % 1000 == 0)
      Log()->error("journal {}: {} ({} errors)", path_, std::string(st.message()), n);
    return st;
  }
  seq_ = seq;
  prev_ = std::move(next_prev);
  size_ += line_.size();
  stats_.records++;
  stats_.last_seq = seq;
  dirty_ = true;
  return absl::OkStatus();
}

absl::Status Journal::MaybeSyncLocked() {
  if (fsync_.kind == FsyncPolicy::Kind::kAlways || (fsync_.kind == FsyncPolicy::Kind::kInterval &&
                                                    absl::Now() - last_sync_ >= fsync_.interval)) {
    return SyncLocked();
  }
  return absl::OkStatus();
}

absl::Status Journal::SyncLocked() {
  if (!fd_.valid()) return absl::FailedPreconditionError("journal closed");
  stats_.fsyncs++;
  last_sync_ = absl::Now();
  dirty_ = false;
  if (fdatasync(fd_.get()) != 0) {
    uint64_t n = ++stats_.fsync_errors;
    absl::Status st = ErrnoStatus(errno, "fdatasync journal");
    if (n == 1 || n % 1000 == 0)
      Log()->error("journal {}: {} ({} errors)", path_, std::string(st.message()), n);
    return st;
  }
  return absl::OkStatus();
}

absl::Status Journal::Sync() {
  absl::MutexLock lock(&mu_);
  return SyncLocked();
}

absl::Duration Journal::UntilSyncDue() const {
  absl::MutexLock lock(&mu_);
  if (!dirty_ || fsync_.kind != FsyncPolicy::Kind::kInterval) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(), last_sync_ + fsync_.interval - absl::Now());
}

absl::Status Journal::SyncIfDue() {
  absl::MutexLock lock(&mu_);
  if (!dirty_ || fsync_.kind != FsyncPolicy::Kind::kInterval ||
      absl::Now() - last_sync_ < fsync_.interval) {
    return absl::OkStatus();
  }
  return SyncLocked();
}

JournalStats Journal::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

// ---- verification -------------------------------------------------------------------------------

absl::StatusOr<VerifyResult> VerifyJournal(const std::string& path) {
  FilePtr f(fopen(path.c_str(), "re"));
  if (!f) return ErrnoStatus(errno, absl::StrCat("open ", path));
  LineReader reader(f.get());
  VerifyResult res;
  std::string expected_prev(kGenesisPrev);
  uint64_t expected_seq = 1;
  uint64_t lineno = 0;
  absl::string_view line;
  bool newline = false, too_long = false;
  auto fail = [&](std::string reason) {
    res.ok = false;
    res.line = lineno;
    res.reason = std::move(reason);
    return res;
  };
  while (reader.Next(&line, &newline, &too_long)) {
    ++lineno;
    if (too_long) {
      return fail(absl::StrCat("malformed record: longer than ", kMaxRecordBytes, " bytes"));
    }
    auto rec = ParseRecord(line);
    if (!newline) {
      // Only the last line can lack '\n': a cut tail or a write that never completed.
      return fail(rec.ok() ? "truncated: the last record has no trailing newline"
                           : absl::StrCat("truncated: the last record is incomplete (",
                                          rec.status().message(), ")"));
    }
    if (!rec.ok()) return fail(std::string(rec.status().message()));
    if (RecordHash(rec->seq, rec->prev, rec->event) != rec->hash) {
      return fail("edited: the record's hash does not match its content");
    }
    if (rec->seq < expected_seq) {
      return fail(absl::StrCat("reordered: seq ", rec->seq, " comes after seq ", expected_seq - 1));
    }
    if (rec->seq > expected_seq) {
      if (uint64_t at = FindSeq(path, lineno, expected_seq)) {
        return fail(absl::StrCat("reordered: expected seq ", expected_seq, ", found seq ", rec->seq,
                                 "; seq ", expected_seq, " is at line ", at));
      }
      return fail(rec->seq == expected_seq + 1
                      ? absl::StrCat("removed: record seq ", expected_seq, " is missing")
                      : absl::StrCat("removed: records seq ", expected_seq, "..", rec->seq - 1,
                                     " are missing"));
    }
    if (rec->prev != expected_prev) {
      return fail(lineno == 1 ? std::string("forged: the first record does not start the chain "
                                            "(prev is not the genesis value)")
                              : absl::StrCat("forged: prev does not match line ", lineno - 1,
                                             " (that line was altered or this record was "
                                             "inserted)"));
    }
    expected_prev = Sha256Hex(line);
    expected_seq++;
    res.records++;
  }
  if (ferror(f.get())) return ErrnoStatus(errno, absl::StrCat("read ", path));
  res.ok = true;
  return res;
}

}  // namespace writ::journal
