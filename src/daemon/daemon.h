// writd: the daemon. Wiring only: it builds the parts in order, runs the pipeline thread's loop,
// and shuts them down in reverse.
//
//   Output          sinks, journal thread, tail subscribers           output.h
//   PolicyStore     the policy set in force, reloads                    policies.h
//   bpf::Loader     programs, maps, ring buffer                         src/bpf/loader.h
//   TaskLifecycle   install, respond, end, restore (TaskControl)        task_lifecycle.h
//   Pipeline        record -> decode -> attribute -> judge -> enforce   pipeline.h
//   Adoption        agents writ did not launch                          adopt.h
//   Guardian        link holder, self-protection                        guardian.h
//   ControlService  the control socket's requests                       control.h
//   credentials     CredentialService, per-task provider credentials    daemon_credentials.cc
//
// Threads: the pipeline thread (Run) polls the ring buffer, judges, and does the housekeeping (task
// end, deadlines, approval expiry), so a task's last records are drained before its task_end.
// Control threads (one per connection) call ControlService. The journal thread, the sink threads
// and the credential service's threads are owned by those parts.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "api/server.h"
#include "bpf/loader.h"
#include "creds/creds.h"
#include "daemon/adopt.h"
#include "daemon/approvals.h"
#include "daemon/bundles.h"
#include "daemon/config.h"
#include "daemon/console.h"
#include "daemon/control.h"
#include "daemon/dns_egress.h"
#include "daemon/guardian.h"
#include "daemon/metrics.h"
#include "daemon/output.h"
#include "daemon/pipeline.h"
#include "daemon/policies.h"
#include "daemon/task_credentials.h"
#include "daemon/task_lifecycle.h"
#include "daemon/tool_calls.h"
#include "identity/cgroup.h"
#include "identity/task.h"
#include "state/store.h"

namespace writ::daemon {

class Daemon {
 public:
  explicit Daemon(Config cfg);
  ~Daemon();

  // Preflight (root, BTF, cgroup2, bpffs), load policies, load BPF, open sinks, start the control
  // socket. Any failure leaves nothing behind and names what to do.
  absl::Status Start();
  // The pipeline loop, on the calling thread, until RequestStop(). Then drains and shuts down.
  void Run();
  // Async-signal-safe.
  void RequestStop() { stop_.store(true); }
  void RequestReload() { policies_.RequestReload(); }

 private:
  absl::Status OpenOutput();
  absl::Status StartCredentials();
  // daemon_credentials.cc: the intent's `credentials:` (CredentialHooks over TaskCredentials).
  CredentialHooks TaskCredentialHooks();
  absl::Status CheckIntentCredentials(const intent::PolicySet& set) const;
  std::optional<creds::TaskClaims> ClaimsForCgroup(const std::string& cgroup_path) const;
  static creds::TaskClaims Claims(const identity::Task& task);
  void OnCredentialEvent(const creds::CredentialEvent& ce);
  MetricsSources Sources() const;
  // Pipeline thread, every housekeeping interval.
  void Housekeeping();
  void Shutdown();

  const Config cfg_;
  const identity::TaskMode mode_;
  std::atomic<bool> stop_{false};
  const std::string boot_tag_;
  const int64_t boot_to_unix_ns_;

  // Member order is construction order: each part is destroyed before what it uses.
  std::unique_ptr<creds::Redactor> redactor_;  // set in Start before anything is emitted
  // The approvals console (console: / --console): before output_, whose emitters call its Observe
  // until the end; stopped first in Shutdown (its handlers use the parts below).
  std::unique_ptr<Console> console_;
  // The fleet link (fleet: in writd.yaml, docs/fleet.md): connects and reconnects in libnats'
  // thread; reported in status and /metrics.
  std::unique_ptr<fleet::Link> fleet_;
  Output output_;
  PolicyStore policies_;
  std::unique_ptr<PolicyBundles> bundles_;  // signed policy bundles (set in Start)
  identity::TaskRegistry registry_;
  identity::ProcessTable procs_;  // the pipeline thread's
  Approvals approvals_;
  std::unique_ptr<ToolCalls> tool_calls_;  // MCP gateway reports (writ run --mcp)
  std::optional<identity::CgroupManager> cgroups_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<creds::CredentialService> cred_service_;
  std::unique_ptr<TaskCredentials> task_creds_;  // after cred_service_: destroyed first
  std::unique_ptr<bpf::Loader> loader_;  // its record handler calls pipeline_ (set before Poll)
  // The DNS stub (dns: in writd.yaml): bound before the loader (its programs redirect to its port),
  // declared after it so that it stops first (its thread writes pins through the loader).
  std::unique_ptr<DnsEgress> dns_;
  std::unique_ptr<TaskLifecycle> lifecycle_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<Adoption> adoption_;
  std::unique_ptr<Guardian> guardian_;
  std::unique_ptr<ControlService> control_;
  std::unique_ptr<api::Server> server_;
  // What Sources() reads: a status request can arrive on the server's own thread before Start's
  // assignment to server_ has completed, so the pointer is published only once it has.
  std::atomic<const api::Server*> server_view_{nullptr};

  // Fail-closed kernel kills already logged (pipeline thread).
  uint64_t fail_closed_logged_ = 0;
  absl::Time fail_closed_checked_ = absl::InfinitePast();
};

}  // namespace writ::daemon
