// Adoption of agents writ did not launch: state the pipeline thread keeps for `kind: Workloads`
// entries (see adopt.cc and docs/architecture.md "Adoption").
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/time/time.h"
#include "intent/intent.h"
#include "intent/workload.h"

namespace writ::daemon {

struct AdoptState {
  // Pipeline thread only (rebuilt on start and on every policy reload).
  std::shared_ptr<const intent::PolicySet> policies;  // the snapshot the matcher was built from
  intent::WorkloadMatcher matcher;
  // Compiled intent per workload name (compiled once per policy load: hosts resolve then, not per exec).
  std::map<std::string, std::shared_ptr<const intent::CompiledIntent>> compiled;
  std::map<std::string, std::string> compile_errors;
  uint32_t kernel_flags = 0;
  // sha256 of exe files, keyed by (dev, inode, size, mtime ns): an agent's binary is hashed once.
  std::map<std::tuple<uint64_t, uint64_t, int64_t, int64_t>, std::string> sha_cache;
  absl::Duration timeout = absl::Seconds(2);

  // Counters (read by status/metrics from other threads).
  std::atomic<uint64_t> candidates{0};  // kernel records read
  std::atomic<uint64_t> adopted{0};     // placed in a new task
  std::atomic<uint64_t> misses{0};      // no workload matched: continued untouched
  std::atomic<uint64_t> failed{0};      // matched, but the task could not be created: continued
  std::atomic<uint64_t> gone{0};        // the process exited (or its pid was reused) before a decision
  std::atomic<uint64_t> late{0};        // read more than `timeout` after the exec (writd was behind)
  std::atomic<uint64_t> unstopped{0};   // not stopped by the kernel (writd's heartbeat was stale)
  std::atomic<uint64_t> stops{0};            // stopped candidates continued by writd
  std::atomic<uint64_t> stopped_us_total{0};  // their summed exec -> SIGCONT time (microseconds)
};

// Lowercase hex sha256 of an open file's content, bounded to `max_bytes` ("" on error or when larger).
std::string Sha256OfFd(int fd, int64_t max_bytes);

}  // namespace writ::daemon
