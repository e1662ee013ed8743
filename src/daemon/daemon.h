// writd: the daemon. Owns the BPF loader, the task registry, the policy set, the sinks and the control
// server, and runs the pipeline:
//
//   ring buffer -> decode -> attribute (task, process table) -> judge (intent) -> enforce -> emit
//
// Threads: the pipeline thread (Run) polls the ring buffer and does everything per event, plus the
// periodic housekeeping (task end, deadlines, approval expiry) so that task state has one writer and a
// task's last records are drained before its task_end. Control-socket threads create tasks, answer
// status and stream tail; they touch the registry (locked) and the BPF task map, never the pipeline's
// own state. Sink threads deliver.
#pragma once

#include <atomic>
#include <deque>
#include <thread>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "api/framing.h"
#include "api/server.h"
#include "bpf/loader.h"
#include "creds/creds.h"
#include "daemon/adopt.h"
#include "daemon/approvals.h"
#include "daemon/config.h"
#include "daemon/task_credentials.h"
#include "decode/decoder.h"
#include "identity/cgroup.h"
#include "identity/task.h"
#include "intent/intent.h"
#include "journal/journal.h"
#include "sinks/sink.h"
#include "state/store.h"
#include "writ/v1/api.pb.h"

namespace writ::daemon {

// Credential hooks: the credentials module fills these in; each is optional.
struct CredentialHooks {
  // The launcher's child is placed and waits: an error refuses the start (the command never runs).
  std::function<absl::Status(const identity::Task&, const api::PeerCred& launcher)> on_task_start;
  std::function<absl::Status(const identity::Task&, const std::string& reason)> revoke;
};

class Daemon {
 public:
  explicit Daemon(Config cfg);
  ~Daemon();

  // Preflight (root, BTF, cgroup2, bpffs), load policies, load BPF, open sinks, start the control
  // socket. Any failure leaves nothing behind and names what to do.
  absl::Status Start();
  // The pipeline loop, on the calling thread, until Stop(). Then drains and shuts down.
  void Run();
  // Async-signal-safe.
  void RequestStop() { stop_.store(true); }
  void RequestReload() { reload_.store(true); }

  identity::TaskRegistry& registry() { return registry_; }
  // Emits a synthetic event (task_start, credential, ...) from any thread.
  void EmitSynthetic(v1::Event& ev);

 private:
  // ---- pipeline thread ----
  void OnRecord(const void* data, size_t size);
  std::shared_ptr<identity::Task> TaskFor(uint64_t cgroup_id);
  void ResolveScript(const decode::RecordInfo& info, v1::Process* p);
  void Judge(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info);
  void Enforce(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info,
               const intent::Verdict& verdict);
  // Self-protection (self_protect.cc): a kind "self" record is judged by writ, not by the intent.
  void JudgeSelf(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info);
  void RunResponses(identity::Task& task, const v1::Event& cause,
                    const std::vector<std::string>& responses, const std::string& reason);
  void Housekeeping();
  void EndTask(const std::shared_ptr<identity::Task>& task, const std::string& reason);
  void ReloadPolicies();

  // ---- adoption of agents writ did not launch (adopt.cc; pipeline thread) ----
  void SyncAdoption();
  void AdoptHeartbeat();
  void StopAdoption();
  void OnAdoptCandidate(const void* data, size_t size);
  absl::Status AdoptProcess(const v1::Workload& w, const decode::AdoptRecord& r,
                            const intent::ProcessFacts& f);
  void AdoptCounters(v1::StatusResponse* s) const;
  void AppendAdoptMetrics(std::string* o) const;
  // Sub-agents of `task` end with it: killed now, credentials revoked now, task_end `end_reason`.
  void EndChildren(identity::Task& task, const char* end_reason, const std::string& why);

  // ---- any thread ----
  // To every sink and `writ tail` subscriber (and the journal). `batch` (the pipeline's records):
  // the sinks get the line at the next CommitOutput(), with the rest of the drained batch. Every string
  // of the event is redacted first, unless `redacted` says the caller just did (the pipeline).
  void Emit(v1::Event& ev, bool batch = false, bool redacted = false);
  // The configured redactor (the built-in rules with a per-process key before Start loaded it).
  const creds::Redactor& Redactor() const { return redactor_ ? *redactor_ : creds::DefaultRedactor(); }
  // An exec whose argv carried a credential: a `secret` event with its finding, after the exec's.
  void EmitSecretInArgv(const identity::Task& task, const v1::Event& exec, const creds::RedactionReport& r);
  void CommitOutput();
  void FillAgent(const identity::Task& task, v1::Event* ev) const;
  void InitSynthetic(v1::Event* ev, const char* kind);
  // Slot, cgroup, kernel tables and registry entry of a new task; with `place` > 0, that process is
  // moved into its cgroup. On error nothing of it is left.
  absl::Status InstallTask(const std::shared_ptr<identity::Task>& task, pid_t place);
  // task_start of a new task (agent, cgroup, deadline, params, command); the caller adds the process.
  v1::Event TaskStartEvent(const identity::Task& task);
  v1::Event ActionEvent(const identity::Task& task, const std::string& type,
                        const std::string& result, uint64_t cause_ktime_ns,
                        const std::string& target, const std::string& reason);
  void RevokeTask(identity::Task& task, uint64_t cause_ktime_ns, const std::string& reason);
  bool KillTask(identity::Task& task, const v1::Event* cause, const std::string& reason);
  bool FreezeTask(identity::Task& task, bool frozen, const v1::Event* cause,
                  const std::string& reason);

  // ---- control threads ----
  void Handle(const api::PeerCred& peer, int fd, const v1::Request& req);
  v1::Response CreateTask(const api::PeerCred& peer, const v1::CreateTaskRequest& req);
  v1::Response TaskStarted(const api::PeerCred& peer, const v1::TaskStartedRequest& req);
  v1::Response Status();
  void Tail(int fd, const v1::TailRequest& req);
  v1::Response TaskAction(const api::PeerCred& peer, const v1::Request& req);
  v1::Response Decide(const api::PeerCred& peer, const v1::ApprovalDecision& d);
  absl::Status InstallKernelTables(const identity::Task& task, const intent::KernelTables& kt);
  absl::Status StartCredentials();
  // task_credentials_wiring.cc: the intent's `credentials:` (CredentialHooks over TaskCredentials).
  void InstallTaskCredentialHooks();
  absl::Status CheckIntentCredentials(const intent::PolicySet& set) const;
  // The kernel side of a task: its tables and its task_map entry (idempotent).
  absl::Status Arm(const identity::Task& task);
  void SaveTask(const identity::Task& task, const v1::Intent* spec);
  void Restore();
  void StartGuardian();
  // Tells the kernel side which processes are writd and its guardian (after StartGuardian).
  void ArmSelfProtection();
  // For the launcher's seccomp filter: writd's thread ids and the guardian; process groups holding them.
  std::vector<uint32_t> ProtectedPids() const;
  std::vector<uint32_t> ProtectedGroups() const;
  void ThawAfterDaemonLoss();
  std::string GuardianMarker() const { return cfg_.state_dir + "/frozen-by-guardian"; }
  std::optional<creds::TaskClaims> ClaimsForCgroup(const std::string& cgroup_path) const;
  static creds::TaskClaims Claims(const identity::Task& task);
  void OnCredentialEvent(const creds::CredentialEvent& ce);
  std::string Metrics();
  bool PeerIsInTask(const api::PeerCred& peer) const;

  Config cfg_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reload_{false};
  std::string boot_tag_;
  int64_t boot_to_unix_ns_ = 0;
  std::string host_;

  std::optional<identity::CgroupManager> cgroups_;
  identity::TaskRegistry registry_;
  identity::ProcessTable procs_;
  decode::Decoder decoder_;
  std::unique_ptr<bpf::Loader> loader_;
  std::unique_ptr<api::Server> server_;
  CredentialHooks creds_;
  std::unique_ptr<creds::Redactor> redactor_;  // set once in Start, before anything is emitted
  std::unique_ptr<creds::CredentialService> cred_service_;
  std::unique_ptr<TaskCredentials> task_creds_;  // after cred_service_: destroyed first
  std::unique_ptr<state::Store> store_;
  pid_t guardian_pid_ = 0;
  Approvals approvals_;

  // Policies: swapped whole on reload; a running task keeps the CompiledIntent it started with.
  mutable absl::Mutex policy_mu_;
  std::shared_ptr<const intent::PolicySet> policies_ ABSL_GUARDED_BY(policy_mu_);
  std::string policy_error_ ABSL_GUARDED_BY(policy_mu_);

  // Pipeline-thread state.
  v1::Event ev_;  // reused for every record: no allocation once grown
  std::unique_ptr<v1::Agent> spare_agent_;  // ev_'s agent, kept across Decode (see OnRecord)
  std::shared_ptr<identity::Task> agent_task_;  // the task ev_'s kept agent was filled for
  std::shared_ptr<identity::Task> cached_task_;
  uint64_t cached_generation_ = ~0ull;
  std::vector<std::shared_ptr<identity::Task>> ending_;
  const intent::Rule* deferred_responses_ = nullptr;  // set by Enforce, run after Emit
  std::unique_ptr<AdoptState> adopt_;  // workloads: matcher, kernel pre-filter, counters
  std::vector<std::string> deferred_self_responses_;  // set by JudgeSelf, run after Emit

  // Output: sinks and tail subscribers.
  absl::Mutex out_mu_;
  std::unique_ptr<sinks::SinkSet> sinks_ ABSL_GUARDED_BY(out_mu_);
  // Set once in Start before any event is emitted; Append is thread-safe (own lock, own fsync).
  std::unique_ptr<journal::Journal> journal_;
  // Records to journal, appended (and fdatasync'ed, per journal_fsync) by journal_thread_ in the order
  // Emit queued them: a violation's fsync (milliseconds on this kind of disk) must not hold up the
  // pipeline, whose next record may be the next violation to kill. Bounded: Emit waits when full.
  void JournalLoop();
  void StopJournal();
  static constexpr size_t kJournalQueueMax = 10000;
  absl::Mutex journal_mu_;
  std::deque<v1::Event> journal_queue_ ABSL_GUARDED_BY(journal_mu_);
  bool journal_stop_ ABSL_GUARDED_BY(journal_mu_) = false;
  // Set when the journal thread should take the queue: by the pipeline's CommitOutput (once per drained
  // batch, not once per finding: a wakeup per record cost more than the append itself), by an Emit from
  // any other thread, and when the queue is full.
  bool journal_ready_ ABSL_GUARDED_BY(journal_mu_) = false;
  std::thread journal_thread_;
  struct Subscriber {
    v1::TailRequest filter;
    absl::Mutex mu;
    absl::CondVar cv;
    std::deque<std::string> frames ABSL_GUARDED_BY(mu);
    bool closed ABSL_GUARDED_BY(mu) = false;
    uint64_t dropped = 0;
  };
  std::list<std::shared_ptr<Subscriber>> subscribers_ ABSL_GUARDED_BY(out_mu_);
  std::atomic<uint64_t> synthetic_seq_{0};

  // Counters (status, metrics).
  std::atomic<uint64_t> events_by_kind_[16] = {};
  // Fail-closed kernel kills already logged (Housekeeping, on the pipeline thread only).
  uint64_t fail_closed_logged_ = 0;
  absl::Time fail_closed_checked_ = absl::InfinitePast();
  std::atomic<uint64_t> unattributed_{0};
  std::atomic<uint64_t> decode_errors_{0};
  std::atomic<uint64_t> tail_drops_{0};
  std::atomic<uint64_t> violations_{0};
  std::atomic<uint64_t> actions_{0};
  std::atomic<uint64_t> procs_entries_{0};  // procs_.size(), published by the pipeline thread
  std::atomic<uint64_t> verdicts_[4] = {};  // by intent::Verdict::Kind
  // Kernel timestamp -> verdict latency of judged events: buckets of microseconds with upper bounds
  // kLatencyBoundsUs (steps of 1.4-2x, so a percentile read off the histogram is within a bucket's
  // width), the last one everything above 1 s.
  static constexpr int64_t kLatencyBoundsUs[] = {
      1,    2,    3,    5,     7,     10,    15,    20,     30,     50,     70,     100,
      150,  200,  300,  500,   700,   1000,  1500,  2000,   3000,   5000,   7000,   10000,
      15000, 20000, 30000, 50000, 70000, 100000, 150000, 200000, 300000, 500000, 700000, 1000000};
  static constexpr int kLatencyBuckets = std::size(kLatencyBoundsUs) + 1;
  std::atomic<uint64_t> latency_buckets_[kLatencyBuckets] = {};
  std::atomic<uint64_t> latency_sum_us_{0};
  std::atomic<uint64_t> latency_count_{0};
};

}  // namespace writ::daemon
