#include "util/util.h"

#include <fcntl.h>
#include <grp.h>
#include <openssl/sha.h>
#include <pwd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "util/fd.h"
#include "util/status_macros.h"

namespace writ {

void AppendRfc3339Nanos(int64_t unix_ns, std::string* out) {
  int64_t secs = unix_ns / 1000000000;
  int64_t nanos = unix_ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    secs -= 1;
  }
  // Events arrive in bursts within the same second: format the date and time once per second per
  // thread, then only the nine fraction digits (this runs for every event on the pipeline thread).
  thread_local int64_t cached_secs = INT64_MIN;
  thread_local char cached[24];  // "YYYY-MM-DDTHH:MM:SS."
  if (secs != cached_secs) {
    time_t t = static_cast<time_t>(secs);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  char frac[11];
  for (int i = 8; i >= 0; i--) {
    frac[i] = static_cast<char>('0' + nanos % 10);
    nanos /= 10;
  }
  frac[9] = 'Z';
  out->append(cached, 20);
  out->append(frac, 10);
}

std::string Rfc3339(absl::Time t) {
  std::string s;
  AppendRfc3339Nanos(absl::ToUnixNanos(t), &s);
  return s;
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError("empty duration");
  absl::Duration d;
  // absl accepts "1h30m", "90s", "500ms"; it also accepts negatives and "inf", which we refuse.
  if (!absl::ParseDuration(s, &d) || d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration \"", s, "\" (use e.g. 90s, 30m, 1h30m)"));
  }
  return d;
}

static int64_t ClockNs(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t BootToUnixOffsetNs() {
  // Bracket the realtime read with two boottime reads and take the midpoint: error < 1 us.
  int64_t b0 = ClockNs(CLOCK_BOOTTIME);
  int64_t r = ClockNs(CLOCK_REALTIME);
  int64_t b1 = ClockNs(CLOCK_BOOTTIME);
  return r - (b0 + (b1 - b0) / 2);
}

int64_t NowBootNs() { return ClockNs(CLOCK_BOOTTIME); }

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open ", path));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  return out;
}

absl::Status WriteFile(const std::string& path, std::string_view data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("open ", path));
  ssize_t n = ::write(fd.get(), data.data(), data.size());
  if (n < 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
  if (static_cast<size_t>(n) != data.size()) {
    return absl::InternalError(absl::StrCat("short write to ", path));
  }
  return absl::OkStatus();
}

absl::Status WriteFileCreate(const std::string& path, std::string_view data) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, absl::StrCat("create ", path));
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return ErrnoStatus(errno, absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

absl::Status WriteAllAndSync(int fd, std::string_view data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoStatus(errno, absl::StrCat("write ", path));
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return ErrnoStatus(errno, absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

std::string ResolveAgainstConfig(const std::string& config_file, const std::string& path) {
  if (path.empty() || path[0] == '/' || path == "-") return path;
  const std::filesystem::path base = std::filesystem::path(config_file).parent_path();
  return (base / path).lexically_normal().string();
}

namespace {
void AppendHexBytes(const unsigned char* p, size_t n, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + 2 * n);
  for (size_t i = 0; i < n; ++i) {
    out->push_back(kHex[p[i] >> 4]);
    out->push_back(kHex[p[i] & 15]);
  }
}
}  // namespace

std::optional<UserEntry> LookupUser(uint32_t uid) {
  std::vector<char> buf(16384);
  for (int attempt = 0; attempt < 4; ++attempt) {
    struct passwd pw;
    struct passwd* out = nullptr;
    int rc = getpwuid_r(uid, &pw, buf.data(), buf.size(), &out);
    if (rc == ERANGE) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 || out == nullptr) return std::nullopt;
    return UserEntry{out->pw_name, static_cast<uint32_t>(out->pw_gid)};
  }
  return std::nullopt;
}

std::optional<uint32_t> LookupGroup(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<char> buf(16384);
  for (int attempt = 0; attempt < 4; ++attempt) {
    struct group gr;
    struct group* out = nullptr;
    int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &out);
    if (rc == ERANGE) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 || out == nullptr) return std::nullopt;
    return static_cast<uint32_t>(out->gr_gid);
  }
  return std::nullopt;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string out;
  AppendHexBytes(md, sizeof(md), &out);
  return out;
}

std::string RandomHex(size_t n_bytes) {
  std::string raw(n_bytes, '\0');
  size_t got = 0;
  while (got < n_bytes) {
    ssize_t n = getrandom(raw.data() + got, n_bytes - got, 0);
    if (n > 0) got += n;
  }
  std::string out;
  AppendHexBytes(reinterpret_cast<const unsigned char*>(raw.data()), raw.size(), &out);
  return out;
}

std::shared_ptr<spdlog::logger> Logger(const std::string& name) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (auto l = spdlog::get(name)) return l;
  auto l = spdlog::stderr_color_mt(name);
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  return l;
}

}  // namespace writ
