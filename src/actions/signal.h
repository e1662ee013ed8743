// Signalling one process safely: a pidfd pinned to (pid, start time), never a bare pid.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace writ::actions {

// Start time of a process from /proc/<pid>/stat (field 22), in ns since boot (clock-tick
// precision).
absl::StatusOr<uint64_t> ProcessStartNs(pid_t pid);

// Sends sig to the process (pid, start_ns) through a pidfd. start_ns (boottime ns, as the BPF side
// reports) must match /proc within one clock tick, else NotFound: the pid was reused.
// start_ns == 0 skips the check (the caller has no start time).
absl::Status SignalProcess(pid_t pid, uint64_t start_ns, int sig);

}  // namespace writ::actions
