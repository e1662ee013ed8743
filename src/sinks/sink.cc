#include "sinks/sink.h"

#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <iterator>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sinks/json_encoder.h"
#include "sinks/ocsf_encoder.h"
#include "sinks/transport.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::sinks {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    // stderr, never the default (stdout) logger: a stdout sink or `events: -` writes JSONL there.
    auto l = spdlog::get("sinks");
    return l ? l : spdlog::stderr_color_mt("sinks");
  }();
  return logger;
}

// Append-only spool of newline-terminated lines. The replay position is kept in "<file>.off" so a
// restart resumes where delivery stopped (a crash between send and offset write re-sends: receivers
// de-duplicate on id). Encoded lines never contain a raw newline (JSON escapes it).
class Spool {
 public:
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const std::string& dir,
                                                     const std::string& name, uint64_t max_bytes) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("mkdir spool_dir ", dir));
    }
    auto s = std::unique_ptr<Spool>(new Spool());
    s->path_ = absl::StrCat(dir, "/", name, ".spool");
    s->off_path_ = s->path_ + ".off";
    s->max_bytes_ = max_bytes;
    s->fd_ = ::open(s->path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd_ < 0) return ErrnoStatus(errno, absl::StrCat("open spool ", s->path_));
    struct stat st;
    if (::fstat(s->fd_, &st) != 0) return ErrnoStatus(errno, "fstat spool");
    s->size_ = static_cast<uint64_t>(st.st_size);
    if (FILE* f = std::fopen(s->off_path_.c_str(), "r")) {
      unsigned long long off = 0;
      if (std::fscanf(f, "%llu", &off) == 1 && off <= s->size_) s->read_off_ = off;
      std::fclose(f);
    }
    if (s->read_off_ == s->size_ && s->size_ > 0) s->Reset();
    return s;
  }
  ~Spool() {
    if (fd_ >= 0) ::close(fd_);
  }

  uint64_t pending_bytes() const { return size_ - read_off_; }
  bool empty() const { return size_ == read_off_; }

  // Fails when the spool is at max_bytes or the file system refuses the write (ENOSPC, EIO); the
  // caller counts the drop. A partly written line is cut off again, so the spool stays whole lines.
  absl::Status Append(const std::string& line) {
    if (size_ + line.size() + 1 > max_bytes_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("spool_max_bytes (", max_bytes_, ") reached"));
    }
    std::string buf = line;
    buf.push_back('\n');
    const char* p = buf.data();
    size_t left = buf.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : ENOSPC;
        if (left != buf.size() && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
          Log()->warn("spool {}: cutting a partial line failed: {}", path_, std::strerror(errno));
        }
        return ErrnoStatus(err, absl::StrCat("write ", path_));
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    size_ += buf.size();
    return absl::OkStatus();
  }

  // Reads up to max_lines lines from the replay position without consuming them.
  std::vector<std::string> Peek(size_t max_lines, uint64_t* bytes) {
    std::vector<std::string> lines;
    *bytes = 0;
    std::string chunk(std::min<uint64_t>(pending_bytes(), 1 << 20), '\0');
    const ssize_t n = ::pread(fd_, chunk.data(), chunk.size(), static_cast<off_t>(read_off_));
    if (n <= 0) return lines;
    size_t pos = 0;
    while (lines.size() < max_lines) {
      const size_t nl = chunk.find('\n', pos);
      if (nl == std::string::npos || nl >= static_cast<size_t>(n)) break;
      lines.emplace_back(chunk.substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (lines.empty() && static_cast<size_t>(n) == chunk.size() && chunk.size() == (1u << 20)) {
      // A single line longer than the read window: skip it rather than wedge the spool.
      *bytes = chunk.size();
      return lines;
    }
    *bytes = pos;
    return lines;
  }

  void Consume(uint64_t bytes) {
    read_off_ += bytes;
    if (read_off_ >= size_) {
      Reset();
      return;
    }
    // Write-then-rename: on a full disk the old offset survives (a restart re-sends a little, with
    // ids) instead of an empty file that would replay the whole spool.
    const std::string tmp = off_path_ + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      const bool ok = std::fprintf(f, "%llu\n", static_cast<unsigned long long>(read_off_)) > 0;
      if (std::fclose(f) == 0 && ok) {
        ::rename(tmp.c_str(), off_path_.c_str());
      } else {
        ::unlink(tmp.c_str());
      }
    }
  }

 private:
  Spool() = default;
  void Reset() {
    if (::ftruncate(fd_, 0) != 0) Log()->warn("spool {}: truncate failed: {}", path_, errno);
    size_ = 0;
    read_off_ = 0;
    ::unlink(off_path_.c_str());
  }

  std::string path_, off_path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t read_off_ = 0;
  uint64_t max_bytes_ = 0;
};

class AsyncSink final : public Sink {
 public:
  AsyncSink(SinkConfig config, std::unique_ptr<Transport> transport, std::unique_ptr<Spool> spool)
      : config_(std::move(config)), transport_(std::move(transport)), spool_(std::move(spool)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~AsyncSink() override { Stop(); }

  void Submit(std::string line) override {
    absl::MutexLock lock(&mu_);
    if (Admit()) queue_.push_back(std::move(line));
  }

  void SubmitCopy(std::string_view line) override {
    absl::MutexLock lock(&mu_);
    if (!Admit()) return;
    if (spare_.empty()) {
      queue_.emplace_back(line);
      return;
    }
    queue_.push_back(std::move(spare_.back()));
    spare_.pop_back();
    queue_.back().assign(line.data(), line.size());
  }

  // Staged lines move into the queue (their buffers with them); the slots they leave are refilled
  // from the delivered lines' buffers, so the staging area never allocates in the steady state.
  void Commit() override {
    if (nstaged_ == 0) return;
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < nstaged_; ++i) {
      if (!Admit()) continue;  // counted; the buffer stays staged for reuse
      queue_.push_back(std::move(staged_[i]));
      if (!spare_.empty()) {
        staged_[i] = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    nstaged_ = 0;
  }

  SinkStats stats() const override {
    absl::MutexLock lock(&mu_);
    SinkStats s = stats_;
    s.queue_depth = queue_.size() + inflight_;
    s.spool_bytes = spool_bytes_;
    return s;
  }

  void Flush(absl::Duration max_wait) override {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queue_.empty() && inflight_ == 0 && spool_bytes_ == 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&idle), max_wait);
  }

  using Sink::Stop;
  void Stop(absl::Duration flush) override {
    Commit();  // staged lines are queued (and delivered, spooled or counted) like the rest
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
    }
    if (flush > absl::ZeroDuration()) Flush(flush);
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      stopped_ = true;
    }
    if (thread_.joinable()) thread_.join();
    // Lines written on a connection that broke and not re-sent yet (the thread was stopped during
    // its backoff): they may not have arrived, so they go with the queue, ahead of it (older).
    std::vector<std::string> unconfirmed = transport_->TakeUnconfirmed();
    transport_->Close();
    // Whatever is left: keep it in the spool for the next start, else count it.
    absl::MutexLock lock(&mu_);
    stats_.resent += unconfirmed.size();  // spooled or counted as dropped: as the Run loop does
    queue_.insert(queue_.begin(), std::make_move_iterator(unconfirmed.begin()),
                  std::make_move_iterator(unconfirmed.end()));
    for (auto& line : queue_) {
      if (spool_ && spool_->Append(line).ok()) {
        ++stats_.spooled;
      } else {
        ++stats_.dropped_on_stop;
      }
    }
    queue_.clear();
    // After Stop nobody scrapes the counter: say it.
    if (stats_.dropped_on_stop > 0) {
      Log()->error("sink {}: {} event(s) neither delivered nor spooled at stop: lost ({})",
                   config_.name, stats_.dropped_on_stop,
                   stats_.last_error.empty() ? "no error recorded" : stats_.last_error);
    }
  }

 private:
  void Run() {
    if (config_.thread_nice != 0 &&
        setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), config_.thread_nice) !=
            0) {
      Log()->warn("sink {}: nice {}: {}", config_.name, config_.thread_nice, std::strerror(errno));
    }
    absl::Duration backoff = config_.backoff_min;
    std::vector<std::string> batch;
    bool pending = false;  // `batch` failed once and is retried as is (no spool)
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this, &pending]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !queue_.empty() || pending || (spool_ && !spool_->empty());
        };
        mu_.Await(absl::Condition(&ready));
        // Linger briefly for a fuller batch: the producer's unlock then wakes this thread once per
        // batch instead of once per line (a futex wake per event cost more than encoding it).
        if (!stopping_ && !pending && queue_.size() < config_.batch_max &&
            config_.linger > absl::ZeroDuration()) {
          auto full = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return stopping_ || queue_.size() >= config_.batch_max;
          };
          mu_.AwaitWithTimeout(absl::Condition(&full), config_.linger);
        }
        if (stopping_) {
          // Un-sent retry batch goes back to the front so Stop() can spool or count it.
          if (pending) {
            for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(*it);
            inflight_ = 0;
          }
          return;
        }
      }
      absl::Status st;
      // Lines written on a connection that broke are re-sent first (at-least-once).
      std::vector<std::string> resend = transport_->TakeUnconfirmed();
      if (!resend.empty()) {
        st = transport_->Send(resend);
        absl::MutexLock lock(&mu_);
        stats_.resent += resend.size();  // sent again now or via the spool: possible duplicates
        if (st.ok()) {
          stats_.delivered += resend.size();
        } else if (spool_) {
          // Keep them ahead of everything newer: they go to the spool before the queue drains.
          for (auto& l : resend) SpoolOrDrop(l);
        } else {
          for (auto it = resend.rbegin(); it != resend.rend(); ++it) queue_.push_front(*it);
        }
      }
      if (st.ok() && spool_ && !spool_->empty()) {
        st = ReplaySpool();
      } else if (st.ok()) {
        if (!pending) {
          absl::MutexLock lock(&mu_);
          batch.clear();
          while (!queue_.empty() && batch.size() < config_.batch_max) {
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
          inflight_ = batch.size();
        }
        if (!batch.empty()) {
          st = transport_->Send(batch);
          absl::MutexLock lock(&mu_);
          if (st.ok()) {
            stats_.delivered += batch.size();
            inflight_ = 0;
            pending = false;
            Recycle(batch);
          } else if (spool_) {
            for (auto& l : batch) SpoolOrDrop(l);
            inflight_ = 0;
            pending = false;
          } else {
            pending = true;  // hold the batch; the queue keeps filling up to queue_max
          }
        }
      }
      if (st.ok()) {
        backoff = config_.backoff_min;
        continue;
      }
      {
        absl::MutexLock lock(&mu_);
        ++stats_.retries;
        ++stats_.errors[static_cast<size_t>(ClassifySendError(st))];
        stats_.last_error = std::string(st.message());
        // While the receiver is down, move the queue into the spool: it keeps order and frees
        // memory for new events.
        if (spool_) {
          while (!queue_.empty()) {
            SpoolOrDrop(queue_.front());
            queue_.pop_front();
          }
        }
      }
      Log()->warn("sink {}: {} (retry in {})", config_.name, std::string(st.message()),
                  absl::FormatDuration(backoff));
      // Sleep for the backoff, but wake early to stop.
      {
        absl::MutexLock lock(&mu_);
        auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
      }
      backoff = std::min(backoff * 2, config_.backoff_max);
    }
  }

  // Counts a submitted line; false (and the drop counted) when it cannot be queued.
  bool Admit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++stats_.submitted;
    if (stopping_) {
      ++stats_.dropped_on_stop;
      return false;
    }
    if (queue_.size() >= config_.queue_max) {
      ++stats_.dropped_queue_full;
      return false;
    }
    return true;
  }

  // Delivered lines go back to SubmitCopy as buffers (their capacity is what saves the allocation).
  void Recycle(std::vector<std::string>& lines) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t cap = std::max<size_t>(2 * config_.batch_max, 256);
    for (auto& l : lines) {
      if (spare_.size() >= cap) break;
      if (l.capacity() <= 4096) spare_.push_back(std::move(l));  // an odd huge line is not kept
    }
    lines.clear();
  }

  void SpoolOrDrop(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::Status st = spool_->Append(line); st.ok()) {
      ++stats_.spooled;
    } else {
      ++stats_.dropped_spool_full;
      LogSpoolDrop(st);
    }
    spool_bytes_ = spool_->pending_bytes();
  }

  // One error line per 10 s at most while the spool refuses lines, with the exact counts.
  void LogSpoolDrop(const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++drops_unlogged_;
    const absl::Time now = absl::Now();
    if (now - last_drop_log_ < absl::Seconds(10)) return;
    Log()->error(
        "sink {}: spool full, dropping events ({}): {} dropped since last report, {} "
        "in total (writ_sink_dropped_total{{sink=\"{}\",reason=\"spool_full\"}})",
        config_.name, std::string(why.message()), drops_unlogged_, stats_.dropped_spool_full,
        config_.name);
    last_drop_log_ = now;
    drops_unlogged_ = 0;
  }

  absl::Status ReplaySpool() {
    for (int i = 0; i < 1000; ++i) {  // bounded per wake-up; the loop comes back for the rest
      uint64_t bytes = 0;
      std::vector<std::string> lines;
      {
        absl::MutexLock lock(&mu_);
        if (spool_->empty()) return absl::OkStatus();
        lines = spool_->Peek(config_.batch_max, &bytes);
      }
      if (!lines.empty()) RETURN_IF_ERROR(transport_->Send(lines));
      absl::MutexLock lock(&mu_);
      spool_->Consume(bytes);
      stats_.replayed += lines.size();
      stats_.delivered += lines.size();
      spool_bytes_ = spool_->pending_bytes();
    }
    return absl::OkStatus();
  }

  const SinkConfig config_;
  std::unique_ptr<Transport> transport_;  // used only by thread_
  mutable absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spare_ ABSL_GUARDED_BY(mu_);  // delivered lines, reused by SubmitCopy
  size_t inflight_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t spool_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Spool> spool_ ABSL_GUARDED_BY(mu_);
  SinkStats stats_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_drop_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t drops_unlogged_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // last: starts after every member it uses exists
};

// ---- YAML config
// ---------------------------------------------------------------------------------

struct Ctx {
  const std::string& file;
  int index;
  absl::Status Err(const YAML::Node& n, absl::string_view field, absl::string_view msg) const {
    const int line = n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
    return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": sinks[", index, "]",
                                                   field.empty() ? "" : ".", field, ": ", msg));
  }
};

absl::StatusOr<std::string> GetString(const YAML::Node& n, const Ctx& ctx, absl::string_view f) {
  if (!n.IsScalar()) return ctx.Err(n, f, "expected a string");
  return n.Scalar();
}
absl::StatusOr<uint64_t> GetUint(const YAML::Node& n, const Ctx& ctx, absl::string_view f) {
  if (!n.IsScalar()) return ctx.Err(n, f, "expected a non-negative integer");
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return ctx.Err(n, f, absl::StrCat("expected a non-negative integer, got '", s, "'"));
  }
  return v;
}
// This host's name as one NATS subject token ('.', '*', '>' and blanks become '_').
std::string HostnameToken() {
  char h[256] = {0};
  if (::gethostname(h, sizeof(h) - 1) != 0 || h[0] == '\0') return "unknown";
  std::string s = h;
  for (char& ch : s) {
    if (ch == '.' || ch == '*' || ch == '>' || ch == ' ' || ch == '\t') ch = '_';
  }
  return s;
}
absl::StatusOr<bool> GetBool(const YAML::Node& n, const Ctx& ctx, absl::string_view f) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  return ctx.Err(n, f, "expected true or false");
}

}  // namespace

Sink::~Sink() = default;

absl::StatusOr<SinkConfig> ParseSinkConfig(const YAML::Node& node, const std::string& file,
                                           int index) {
  const Ctx ctx{file, index};
  if (!node.IsMap()) return ctx.Err(node, "", "expected a mapping");
  SinkConfig c;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>("");
    const YAML::Node& v = kv.second;
    if (key == "type") {
      ASSIGN_OR_RETURN(c.type, GetString(v, ctx, key));
      if (c.type != "stdout" && c.type != "file" && c.type != "syslog" && c.type != "http" &&
          c.type != "hec" && c.type != "nats") {
        return ctx.Err(v, key,
                       absl::StrCat("unknown sink type '", c.type,
                                    "' (want stdout, file, syslog, http, hec or nats)"));
      }
    } else if (key == "format") {
      ASSIGN_OR_RETURN(std::string f, GetString(v, ctx, key));
      if (f == "json") {
        c.format = Format::kJson;
      } else if (f == "ocsf") {
        c.format = Format::kOcsf;
      } else {
        return ctx.Err(v, key, absl::StrCat("unknown format '", f, "' (want json or ocsf)"));
      }
    } else if (key == "path") {
      ASSIGN_OR_RETURN(c.path, GetString(v, ctx, key));
    } else if (key == "address") {
      ASSIGN_OR_RETURN(c.address, GetString(v, ctx, key));
      const size_t colon = c.address.rfind(':');
      int port = 0;
      if (colon == std::string::npos || colon == 0 ||
          std::from_chars(c.address.data() + colon + 1, c.address.data() + c.address.size(), port)
                  .ptr != c.address.data() + c.address.size() ||
          port <= 0 || port > 65535) {
        return ctx.Err(v, key, absl::StrCat("expected host:port, got '", c.address, "'"));
      }
    } else if (key == "url") {
      ASSIGN_OR_RETURN(c.url, GetString(v, ctx, key));
      auto u = ParseUrl(c.url);
      if (!u.ok()) return ctx.Err(v, key, u.status().message());
    } else if (key == "token") {
      ASSIGN_OR_RETURN(c.token, GetString(v, ctx, key));
    } else if (key == "name") {
      ASSIGN_OR_RETURN(c.name, GetString(v, ctx, key));
    } else if (key == "max_bytes") {
      ASSIGN_OR_RETURN(c.max_bytes, GetUint(v, ctx, key));
    } else if (key == "max_files") {
      ASSIGN_OR_RETURN(uint64_t n, GetUint(v, ctx, key));
      if (n < 1 || n > 1000) return ctx.Err(v, key, "must be between 1 and 1000");
      c.max_files = static_cast<int>(n);
    } else if (key == "fsync") {
      ASSIGN_OR_RETURN(c.fsync, GetBool(v, ctx, key));
    } else if (key == "spool_dir") {
      ASSIGN_OR_RETURN(c.spool_dir, GetString(v, ctx, key));
    } else if (key == "spool_max_bytes") {
      ASSIGN_OR_RETURN(c.spool_max_bytes, GetUint(v, ctx, key));
    } else if (key == "queue_max") {
      ASSIGN_OR_RETURN(uint64_t n, GetUint(v, ctx, key));
      if (n == 0) return ctx.Err(v, key, "must be positive");
      c.queue_max = n;
    } else if (key == "batch_max") {
      ASSIGN_OR_RETURN(uint64_t n, GetUint(v, ctx, key));
      if (n == 0) return ctx.Err(v, key, "must be positive");
      c.batch_max = n;
    } else if (key == "servers") {
      if (v.IsScalar()) {
        c.nats.servers.push_back(v.Scalar());
      } else if (v.IsSequence()) {
        for (size_t i = 0; i < v.size(); ++i) {
          ASSIGN_OR_RETURN(std::string u, GetString(v[i], ctx, absl::StrCat(key, "[", i, "]")));
          c.nats.servers.push_back(u);
        }
      } else {
        return ctx.Err(v, key, "expected a list of nats:// or tls:// URLs");
      }
      for (size_t i = 0; i < c.nats.servers.size(); ++i) {
        const std::string& u = c.nats.servers[i];
        if (!absl::StartsWith(u, "nats://") && !absl::StartsWith(u, "tls://")) {
          return ctx.Err(v.IsSequence() ? v[i] : v, key,
                         absl::StrCat("expected a nats:// or tls:// URL, got '", u, "'"));
        }
      }
    } else if (key == "subject") {
      ASSIGN_OR_RETURN(c.nats.subject, GetString(v, ctx, key));
      if (c.nats.subject.empty() || c.nats.subject.find_first_of(" \t*>") != std::string::npos) {
        return ctx.Err(v, key, "expected a subject without spaces or wildcards");
      }
    } else if (key == "stream") {
      ASSIGN_OR_RETURN(c.nats.stream, GetString(v, ctx, key));
      if (c.nats.stream.empty() || c.nats.stream.find_first_of(" \t.*>") != std::string::npos) {
        return ctx.Err(v, key, "expected a stream name without spaces, '.', '*' or '>'");
      }
    } else if (key == "create_stream") {
      ASSIGN_OR_RETURN(c.nats.create_stream, GetBool(v, ctx, key));
    } else if (key == "replicas") {
      ASSIGN_OR_RETURN(uint64_t n, GetUint(v, ctx, key));
      if (n < 1 || n > 5) return ctx.Err(v, key, "must be between 1 and 5");
      c.nats.replicas = static_cast<int>(n);
    } else if (key == "creds_file") {
      ASSIGN_OR_RETURN(c.nats.creds_file, GetString(v, ctx, key));
    } else if (key == "nkey_seed_file") {
      ASSIGN_OR_RETURN(c.nats.nkey_seed_file, GetString(v, ctx, key));
    } else if (key == "user") {
      ASSIGN_OR_RETURN(c.nats.user, GetString(v, ctx, key));
    } else if (key == "password") {
      ASSIGN_OR_RETURN(c.nats.password, GetString(v, ctx, key));
    } else if (key == "tls") {
      if (!v.IsMap()) return ctx.Err(v, key, "expected a mapping {ca, cert, key, verify}");
      c.tls.enabled = true;
      for (const auto& t : v) {
        const std::string tk = t.first.as<std::string>("");
        const std::string field = "tls." + tk;
        if (tk == "ca") {
          ASSIGN_OR_RETURN(c.tls.ca, GetString(t.second, ctx, field));
        } else if (tk == "cert") {
          ASSIGN_OR_RETURN(c.tls.cert, GetString(t.second, ctx, field));
        } else if (tk == "key") {
          ASSIGN_OR_RETURN(c.tls.key, GetString(t.second, ctx, field));
        } else if (tk == "verify") {
          ASSIGN_OR_RETURN(c.tls.verify, GetBool(t.second, ctx, field));
        } else {
          return ctx.Err(t.first, field, "unknown field");
        }
      }
    } else {
      return ctx.Err(kv.first, key, "unknown field");
    }
  }
  if (c.type.empty()) return ctx.Err(node, "type", "required");
  if (c.type == "file" && c.path.empty()) return ctx.Err(node, "path", "required for a file sink");
  if (c.type == "syslog" && c.address.empty()) {
    return ctx.Err(node, "address", "required for a syslog sink");
  }
  if ((c.type == "http" || c.type == "hec") && c.url.empty()) {
    return ctx.Err(node, "url", absl::StrCat("required for a ", c.type, " sink"));
  }
  if (c.type == "hec" && c.token.empty()) return ctx.Err(node, "token", "required for hec");
  if (c.type == "nats") {
    if (c.nats.servers.empty()) return ctx.Err(node, "servers", "required for a nats sink");
    if (c.nats.stream.empty()) return ctx.Err(node, "stream", "required for a nats sink");
    if (!c.nats.creds_file.empty() + !c.nats.nkey_seed_file.empty() + !c.nats.user.empty() > 1) {
      return ctx.Err(node, "creds_file", "creds_file, nkey_seed_file and user exclude each other");
    }
    if (c.nats.subject.empty()) c.nats.subject = absl::StrCat("writ.events.", HostnameToken());
  } else if (!c.nats.servers.empty() || !c.nats.stream.empty()) {
    const char* f = c.nats.servers.empty() ? "stream" : "servers";
    return ctx.Err(node[f], f, "only for a nats sink");
  }
  if (c.tls.cert.empty() != c.tls.key.empty()) {
    return ctx.Err(node["tls"], "tls", "cert and key go together");
  }
  if (c.type == "stdout") c.path = "-";
  // Paths in writd.yaml resolve against its directory, as `policies` and `state_dir` do.
  if (!file.empty()) {
    for (std::string* p : {&c.path, &c.spool_dir, &c.tls.ca, &c.tls.cert, &c.tls.key,
                           &c.nats.creds_file, &c.nats.nkey_seed_file}) {
      *p = ResolveAgainstConfig(file, *p);
    }
  }
  if (c.name.empty()) c.name = absl::StrCat(c.type, "-", index);
  return c;
}

absl::StatusOr<std::unique_ptr<Sink>> MakeSink(const SinkConfig& config) {
  std::unique_ptr<Transport> t;
  if (config.type == "stdout" || config.type == "file") {
    ASSIGN_OR_RETURN(t, MakeFileTransport(config));
  } else if (config.type == "syslog") {
    ASSIGN_OR_RETURN(t, MakeSyslogTransport(config));
  } else if (config.type == "http" || config.type == "hec") {
    ASSIGN_OR_RETURN(t, MakeHttpTransport(config));
  } else if (config.type == "nats") {
    ASSIGN_OR_RETURN(t, MakeNatsTransport(config));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown sink type '", config.type, "'"));
  }
  std::unique_ptr<Spool> spool;
  if (!config.spool_dir.empty()) {
    ASSIGN_OR_RETURN(spool, Spool::Open(config.spool_dir, config.name, config.spool_max_bytes));
  }
  return std::unique_ptr<Sink>(new AsyncSink(config, std::move(t), std::move(spool)));
}

absl::StatusOr<std::unique_ptr<Sink>> MakeFileSink(const std::string& path, Format format,
                                                   int thread_nice) {
  SinkConfig c;
  c.thread_nice = thread_nice;
  c.type = path == "-" ? "stdout" : "file";
  c.path = path;
  c.format = format;
  c.name = c.type;
  return MakeSink(c);
}

SinkSet::SinkSet(std::vector<Entry> entries) : entries_(std::move(entries)) {}
SinkSet::~SinkSet() { Stop(); }

void SinkSet::Stage(const writ::v1::Event& ev) {
  // Each format is encoded once, straight into the first of its sinks' staging buffers; further
  // sinks of the same format copy that line.
  const std::string* encoded[2] = {nullptr, nullptr};
  for (auto& e : entries_) {
    const int f = e.format == Format::kJson ? 0 : 1;
    std::string* line = e.sink->StageBuffer();
    if (encoded[f] != nullptr) {
      line->assign(*encoded[f]);
      continue;
    }
    if (f == 0) {
      AppendJson(ev, line);
    } else {
      AppendOcsf(ev, line);
    }
    encoded[f] = line;
  }
  if (++staged_ >= kCommitEvery) Commit();
}
void SinkSet::Commit() {
  if (staged_ == 0) return;
  for (auto& e : entries_) e.sink->Commit();
  staged_ = 0;
}
void SinkSet::Flush(absl::Duration max_wait) {
  Commit();
  const absl::Time deadline = absl::Now() + max_wait;
  for (auto& e : entries_) e.sink->Flush(std::max(deadline - absl::Now(), absl::ZeroDuration()));
}
void SinkSet::Stop(absl::Duration flush_budget) {
  Flush(flush_budget);
  for (auto& e : entries_) e.sink->Stop(absl::ZeroDuration());
}

absl::StatusOr<std::unique_ptr<SinkSet>> MakeSinkSet(const YAML::Node& sinks,
                                                     const std::string& file_for_errors) {
  std::vector<SinkSet::Entry> entries;
  if (!sinks || sinks.IsNull()) return std::make_unique<SinkSet>(std::move(entries));
  if (!sinks.IsSequence()) {
    const int line = sinks.Mark().line >= 0 ? sinks.Mark().line + 1 : 0;
    return absl::InvalidArgumentError(
        absl::StrCat(file_for_errors, ":", line, ": sinks: expected a list"));
  }
  std::vector<SinkConfig> configs;
  try {
    for (size_t i = 0; i < sinks.size(); ++i) {
      ASSIGN_OR_RETURN(SinkConfig c,
                       ParseSinkConfig(sinks[i], file_for_errors, static_cast<int>(i)));
      for (const auto& prev : configs) {
        if (prev.name == c.name) {
          return absl::InvalidArgumentError(
              absl::StrCat(file_for_errors, ":", sinks[i].Mark().line + 1, ": sinks[", i,
                           "].name: duplicate sink name '", c.name, "'"));
        }
      }
      configs.push_back(std::move(c));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_for_errors, ":", e.mark.line + 1, ": sinks: ", e.msg));
  }
  for (size_t i = 0; i < configs.size(); ++i) {
    auto s = MakeSink(configs[i]);
    if (!s.ok()) {
      return absl::Status(s.status().code(),
                          absl::StrCat(file_for_errors, ":", sinks[i].Mark().line + 1, ": sinks[",
                                       i, "]: ", s.status().message()));
    }
    entries.push_back({std::move(*s), configs[i].format, configs[i].name});
  }
  return std::make_unique<SinkSet>(std::move(entries));
}

}  // namespace writ::sinks
