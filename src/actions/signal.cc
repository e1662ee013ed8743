#include "actions/signal.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::actions {

absl::StatusOr<uint64_t> ProcessStartNs(pid_t pid) {
  ASSIGN_OR_RETURN(std::string stat, ReadFile(absl::StrCat("/proc/", pid, "/stat")));
  // comm (field 2) may hold spaces and parentheses: fields restart after the last ')'.
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos) return absl::DataLossError("malformed /proc/<pid>/stat");
  std::vector<absl::string_view> f = absl::StrSplit(absl::string_view(stat).substr(rp + 2), ' ');
  // After ')': field 3 is f[0], so field 22 (starttime) is f[19].
  if (f.size() < 20) return absl::DataLossError("short /proc/<pid>/stat");
  uint64_t ticks = 0;
  if (!absl::SimpleAtoi(f[19], &ticks)) return absl::DataLossError("bad starttime");
  static const long hz = sysconf(_SC_CLK_TCK);
  return ticks * (1000000000ull / static_cast<uint64_t>(hz));
}

absl::Status SignalProcess(pid_t pid, uint64_t start_ns, int sig) {
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
    return ErrnoStatus(errno, absl::StrCat("pidfd_open ", pid));
  }
  if (start_ns != 0) {
    // The pidfd pins the process; check it is the one we mean before signalling.
    auto got = ProcessStartNs(pid);
    static const uint64_t tick = 1000000000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
    if (!got.ok()) return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
    uint64_t diff = *got > start_ns ? *got - start_ns : start_ns - *got;
    if (diff > tick) {
      return absl::NotFoundError(absl::StrCat("pid ", pid, " was reused by another process"));
    }
  }
  if (syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) {
    if (errno == ESRCH) return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
    return ErrnoStatus(errno, absl::StrCat("pidfd_send_signal ", pid));
  }
  return absl::OkStatus();
}

}  // namespace writ::actions
