// Small shared helpers: time formatting, durations, file I/O, loggers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace writ {

// RFC 3339 UTC with nanoseconds: 2026-11-28T10:19:03.123456789Z. Appends to *out.
void AppendRfc3339Nanos(int64_t unix_ns, std::string* out);
std::string Rfc3339(absl::Time t);

// "30m", "1h30m", "90s", "500ms", "2h". Rejects negatives, empty and unknown units.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view s);

// CLOCK_REALTIME - CLOCK_BOOTTIME, ns: converts bpf_ktime_get_boot_ns() to Unix time.
int64_t BootToUnixOffsetNs();
int64_t NowBootNs();

absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes the whole string; for cgroup control files and pid files.
absl::Status WriteFile(const std::string& path, std::string_view data);
// Creates or truncates path (mode 0600) and writes data.
absl::Status WriteFileCreate(const std::string& path, std::string_view data);
// Writes all of data to fd (retrying short writes and EINTR), then fsyncs it; `path` names it in
// errors.
absl::Status WriteAllAndSync(int fd, std::string_view data, const std::string& path);

// A path from a config file: relative paths resolve against the config file's directory (not
// writd's working directory); absolute paths, "" and "-" (stdout) are returned as they are.
std::string ResolveAgainstConfig(const std::string& config_file, const std::string& path);

// Random lowercase hex string of n_bytes*2 characters (getrandom).
std::string RandomHex(size_t n_bytes);
// Lowercase hex SHA-256 of `data` (journal chains, approval and tool-call bindings, policy
// sources).
std::string Sha256Hex(absl::string_view data);

// The passwd entry of `uid` (getpwuid_r: getpwuid's static buffer is shared by every thread, and
// writd looks users up on control-socket threads and the pipeline at once). nullopt if none.
struct UserEntry {
  std::string name;
  uint32_t gid = 0;
};
std::optional<UserEntry> LookupUser(uint32_t uid);
// The gid of group `name` (getgrnam_r). nullopt if there is no such group.
std::optional<uint32_t> LookupGroup(const std::string& name);

// A named spdlog logger writing to stderr, created once.
std::shared_ptr<spdlog::logger> Logger(const std::string& name);

}  // namespace writ
