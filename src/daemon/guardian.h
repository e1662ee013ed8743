// The guardian and writd's own protection. The guardian is writd's binary re-executed (main.cc,
// `--guardian`) outside every task cgroup: it inherits the BPF link fds, so the programs stay
// attached and in-kernel enforcement goes on if writd dies (this kernel refuses to pin links), and
// with on_daemon_loss: freeze it freezes every task while writd is down. Self-protection: the
// kernel side (bpf/writ_self.bpf.h) and the launcher's seccomp filter are told which processes are
// writd and its guardian.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/loader.h"
#include "identity/cgroup.h"
#include "identity/task.h"
#include "writ/v1/api.pb.h"

namespace writ::daemon {

class TaskControl;

class Guardian {
 public:
  struct Options {
    std::string run_dir;         // guardian.pid
    std::string state_dir;       // frozen-by-guardian: the tasks it froze
    std::string on_daemon_loss;  // continue | freeze
  };
  explicit Guardian(Options opts) : opts_(std::move(opts)) {}

  // Starts this writd's guardian with the loader's links, then dismisses a previous writd's (only
  // now: the programs never detach across a restart).
  void Start(const bpf::Loader& loader, const identity::CgroupManager& cgroups);
  // Tasks the guardian (or a clean stop) froze while writd was away: thaws those re-adopted.
  void ThawAfterDaemonLoss(identity::TaskRegistry& registry, TaskControl& tasks);
  // Tells the kernel side which processes are writd and its guardian.
  void ArmSelfProtection(bpf::Loader& loader) const;
  // For the launcher's seccomp filter: writd's thread ids and the guardian; process groups holding
  // them.
  void Protected(v1::PlacedResponse* p) const;
  // Clean stop: with no task left the guardian releases the links; with tasks left and
  // on_daemon_loss freeze, they are frozen until writd returns.
  void OnStop(const identity::TaskRegistry& registry, const identity::CgroupManager& cgroups);

  pid_t pid() const { return pid_; }

 private:
  std::string Marker() const { return opts_.state_dir + "/frozen-by-guardian"; }
  const Options opts_;
  pid_t pid_ = 0;
};

// The guardian process's main (writd --guardian PARENT CGROUP_ROOT MARKER POLICY, see main.cc).
int RunGuardianProcess(pid_t parent, const char* cgroup_root, const char* marker, bool freeze);

}  // namespace writ::daemon
