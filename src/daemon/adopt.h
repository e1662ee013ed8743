// Adoption of agents writ did not launch: the `kind: Workloads` entries of the policy set, matched
// against the processes the kernel pre-filter stops at exec (see adopt.cc and docs/architecture.md
// "Adoption").
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "absl/time/time.h"
#include "bpf/loader.h"
#include "daemon/policies.h"
#include "daemon/seams.h"
#include "decode/decoder.h"
#include "intent/intent.h"
#include "intent/workload.h"
#include "writ/v1/api.pb.h"

namespace writ::daemon {

// Adoption of agents writ did not launch (policies' `kind: Workloads` entries). Pipeline thread
// only, but for the counters (status and metrics read them from other threads).
class Adoption {
 public:
  struct Deps {
    bpf::Loader& loader;
    PolicyStore& policies;
    TaskControl& tasks;
    EventOutput& output;
  };
  struct Options {
    std::string cgroup_subtree = "writ";
    identity::TaskMode mode = identity::TaskMode::kMonitor;  // the daemon's
  };
  Adoption(Deps deps, Options opts) : d_(deps), opts_(std::move(opts)) {}

  // Rebuilds the matcher and the kernel pre-filter from the policy set in force (start and every
  // reload; nothing when the set did not change).
  void Sync();
  // The kernel stops candidates only while this is fresh: a stuck or dead writd stops nobody new.
  void Heartbeat();
  // Turns the pre-filter off (clean stop): no process is stopped once nobody will continue it.
  void Stop();
  // One WRIT_EV_ADOPT record; false when it did not decode (a stopped process is continued anyway).
  bool OnCandidate(const void* data, size_t size);

  void AddCounters(v1::StatusResponse* s) const;
  void AppendMetrics(std::string* o) const;

 private:
  absl::Status Adopt(const v1::Workload& w, const decode::AdoptRecord& r,
                     const intent::ProcessFacts& f);
  std::string Sha256Of(pid_t pid);

  Deps d_;
  const Options opts_;
  std::shared_ptr<const intent::PolicySet> policies_;  // the snapshot the matcher was built from
  intent::WorkloadMatcher matcher_;
  // Compiled intent per workload name (compiled once per policy load: hosts resolve then, not per
  // exec).
  std::map<std::string, std::shared_ptr<const intent::CompiledIntent>> compiled_;
  std::map<std::string, std::string> compile_errors_;
  uint32_t kernel_flags_ = 0;
  // sha256 of exe files, keyed by (dev, inode, size, mtime ns): an agent's binary is hashed once.
  std::map<std::tuple<uint64_t, uint64_t, int64_t, int64_t>, std::string> sha_cache_;
  absl::Duration timeout_ = absl::Seconds(2);

  // Counters.
  std::atomic<uint64_t> candidates_{0};  // kernel records read
  std::atomic<uint64_t> adopted_{0};     // placed in a new task
  std::atomic<uint64_t> misses_{0};      // no workload matched: continued untouched
  std::atomic<uint64_t> failed_{0};      // matched, but the task could not be created: continued
  std::atomic<uint64_t> gone_{0};  // the process exited (or its pid was reused) before a decision
  std::atomic<uint64_t> late_{0};  // read more than `timeout` after the exec (writd was behind)
  std::atomic<uint64_t> unstopped_{0};  // not stopped by the kernel (writd's heartbeat was stale)
  std::atomic<uint64_t> stops_{0};      // stopped candidates continued by writd
  std::atomic<uint64_t> stopped_us_total_{0};  // their summed exec -> SIGCONT time (microseconds)
};

// Lowercase hex sha256 of an open file's content, bounded to `max_bytes` ("" on error or when
// larger).
std::string Sha256OfFd(int fd, int64_t max_bytes);

}  // namespace writ::daemon
