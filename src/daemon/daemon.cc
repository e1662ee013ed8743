#include "daemon/daemon.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "actions/signal.h"
#include "bpf/path_hash.h"
#include "creds/redact.h"
#include "identity/proc_path.h"
#include "identity/spiffe_id.h"
#include "sinks/json_encoder.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskState;

namespace {

constexpr char kVersion[] = "0.1.0";
constexpr absl::Duration kPendingTimeout = absl::Seconds(10);

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd");
  return l;
}

// A counter only the pipeline thread writes (others read it): a relaxed load and store, not a locked
// read-modify-write per event.
inline void Bump(std::atomic<uint64_t>& c, uint64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// First 8 hex digits of the kernel's boot id: event ids are unique per boot and stable across writd
// restarts (they embed the kernel timestamp).
std::string BootTag() {
  auto s = ReadFile("/proc/sys/kernel/random/boot_id");
  std::string tag;
  if (s.ok()) {
    for (char c : *s) {
      if (isxdigit(static_cast<unsigned char>(c))) tag.push_back(c);
      if (tag.size() == 8) break;
    }
  }
  return tag.empty() ? RandomHex(4) : tag;
}

const char* StateName(TaskState s) {
  switch (s) {
    case TaskState::kPending: return "pending";
    case TaskState::kRunning: return "running";
    case TaskState::kEnded: return "ended";
  }
  return "?";
}

v1::Response Error(const absl::Status& st) {
  v1::Response r;
  r.set_code(static_cast<int>(st.code()));
  r.set_error(std::string(st.message()));
  return r;
}

bool Has(const std::vector<std::string>& v, const char* s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Sub-agent tasks delegated by task `id` (direct children; callers recurse through them).
std::vector<std::shared_ptr<Task>> ChildrenOf(const identity::TaskRegistry& reg, const std::string& id) {
  std::vector<std::shared_ptr<Task>> out;
  for (const std::shared_ptr<Task>& t : reg.All()) {
    if (t->parent_task == id && t->state.load() != TaskState::kEnded) out.push_back(t);
  }
  return out;
}

}  // namespace

Daemon::Daemon(Config cfg)
    : cfg_(std::move(cfg)),
      registry_(WRIT_MAX_TASKS),
      procs_(1 << 16),
      decoder_(BootToUnixOffsetNs(), BootTag()) {
  boot_tag_ = BootTag();
  boot_to_unix_ns_ = BootToUnixOffsetNs();
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  host_ = host;
}

Daemon::~Daemon() {
  if (server_) server_->Stop();
  StopJournal();
  absl::MutexLock lock(&out_mu_);
  if (sinks_) sinks_->Stop();
}

void Daemon::JournalLoop() {
  std::vector<v1::Event> batch;
  for (;;) {
    bool sync_due = false;
    {
      absl::MutexLock lock(&journal_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(journal_mu_) {
        return journal_stop_ || journal_ready_;
      };
      // An interval policy's unsynced tail is due at a deadline even when no record follows it.
      sync_due = !journal_mu_.AwaitWithTimeout(absl::Condition(&ready), journal_->UntilSyncDue());
      if (!sync_due) {
        if (journal_queue_.empty() && journal_stop_) return;  // everything queued is written
        journal_ready_ = false;
        batch.clear();
        while (!journal_queue_.empty()) {
          batch.push_back(std::move(journal_queue_.front()));
          journal_queue_.pop_front();
        }
      }
    }
    if (sync_due) {
      (void)journal_->SyncIfDue();  // errors are counted inside
    } else {
      (void)journal_->Append(batch);  // synced as the policy says; errors are counted inside
    }
  }
}

// Writes whatever is queued, then stops the thread. Idempotent.
void Daemon::StopJournal() {
  {
    absl::MutexLock lock(&journal_mu_);
    journal_stop_ = true;
  }
  if (journal_thread_.joinable()) journal_thread_.join();
}

absl::Status Daemon::Start() {
  // Preflight: each failure names the fix.
  if (geteuid() != 0) {
    return absl::PermissionDeniedError(
        "writd must run as root: it loads BPF programs and manages cgroups (try sudo)");
  }
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return absl::FailedPreconditionError(
        "no kernel BTF at /sys/kernel/btf/vmlinux: writd needs a kernel built with "
        "CONFIG_DEBUG_INFO_BTF=y");
  }
  ASSIGN_OR_RETURN(std::string cg2, identity::FindCgroup2Mount());
  RETURN_IF_ERROR(ValidateMode(cfg_.mode));

  // Policies first: a daemon with a broken policy directory does not start.
  auto set = intent::LoadPolicyDir(cfg_.policies_dir);
  if (set.ok()) {
    if (absl::Status st = CheckIntentCredentials(*set); !st.ok()) set = st;
  }
  if (!set.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policies in ", cfg_.policies_dir, " are invalid:\n", set.status().message()));
  }
  {
    absl::MutexLock lock(&policy_mu_);
    policies_ = std::make_shared<const intent::PolicySet>(std::move(*set));
  }

  for (const std::string& dir : {cfg_.state_dir, cfg_.run_dir}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
    // The run dir is traversable (0711, not listable) so tasks of other uids reach workload.sock (0666,
    // attestation decides) and their own credentials/<task>/ (0500, theirs); writd.sock stays 0600.
    chmod(dir.c_str(), dir == cfg_.run_dir ? 0711 : 0700);
  }

  // Secret redaction, before anything can be emitted: a bad rules file or key file stops the start.
  {
    ASSIGN_OR_RETURN(creds::RedactionRuleSet rules, creds::LoadRedactionRules(cfg_.redaction_rules));
    const std::string key_path =
        cfg_.redaction_key.empty() ? cfg_.state_dir + "/redaction.key" : cfg_.redaction_key;
    ASSIGN_OR_RETURN(std::string key, creds::LoadOrCreateRedactionKey(key_path));
    ASSIGN_OR_RETURN(redactor_, creds::Redactor::Create(rules, key));
    Log()->info("redaction: {} rules ({}), key {}", redactor_->rule_count(),
                cfg_.redaction_rules.empty() ? "built in" : "built in + " + cfg_.redaction_rules, key_path);
  }

  ASSIGN_OR_RETURN(identity::CgroupManager cgm,
                   identity::CgroupManager::Create(cg2, cfg_.cgroup_subtree));
  cgroups_.emplace(std::move(cgm));

  // Sinks: the --events file (JSONL) plus whatever the config lists.
  std::vector<sinks::SinkSet::Entry> entries;
  if (!cfg_.events.empty()) {
    if (cfg_.events != "-") {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(cfg_.events).parent_path(), ec);
    }
    ASSIGN_OR_RETURN(auto sink,
                     sinks::MakeFileSink(cfg_.events, sinks::Format::kJson, cfg_.pipeline_nice));
    entries.push_back({std::move(sink), sinks::Format::kJson, "events"});
  }
  if (cfg_.sinks && cfg_.sinks.IsSequence()) {
    for (size_t i = 0; i < cfg_.sinks.size(); i++) {
      ASSIGN_OR_RETURN(sinks::SinkConfig sc,
                       sinks::ParseSinkConfig(cfg_.sinks[i], cfg_.config_file, static_cast<int>(i)));
      sc.thread_nice = cfg_.pipeline_nice;
      ASSIGN_OR_RETURN(auto sink, sinks::MakeSink(sc));
      entries.push_back({std::move(sink), sc.format, sc.name});
    }
  }
  {
    absl::MutexLock lock(&out_mu_);
    sinks_ = std::make_unique<sinks::SinkSet>(std::move(entries));
  }
  if (cfg_.journal != "off") {
    journal::JournalOptions jo;
    jo.path = cfg_.journal.empty() ? cfg_.state_dir + "/journal.jsonl" : cfg_.journal;
    ASSIGN_OR_RETURN(jo.fsync, journal::ParseFsyncPolicy(cfg_.journal_fsync));
    ASSIGN_OR_RETURN(journal_, journal::Journal::Open(jo));
    journal_thread_ = std::thread([this] { JournalLoop(); });
  }

  ASSIGN_OR_RETURN(store_, state::Store::Open(cfg_.state_dir + "/state.db"));
  approvals_.SetStore(store_.get());
  RETURN_IF_ERROR(StartCredentials());

  bpf::RouteLibbpfLogs();
  bpf::LoaderConfig lc;
  lc.ring_bytes = cfg_.ring_buffer_bytes;
  lc.task_level = static_cast<uint32_t>(cgroups_->task_level());
  lc.wakeup_bytes = cfg_.ring_buffer_bytes / 4;
  lc.spin_ns = absl::ToInt64Nanoseconds(cfg_.drain_spin);
  lc.cgroup_root = cgroups_->root();
  lc.program_stats = cfg_.bpf_program_stats;
  if (cfg_.bpf_pin_dir != "none") {
    lc.pin_dir = cfg_.bpf_pin_dir.empty() ? "/sys/fs/bpf/" + cfg_.cgroup_subtree : cfg_.bpf_pin_dir;
  }
  ASSIGN_OR_RETURN(loader_, bpf::Loader::Open(lc, [this](const void* d, size_t n) {
                     OnRecord(d, n);
                   }));
  for (const auto& h : loader_->hooks()) {
    if (h.active) {
      Log()->info("hook {}: active", h.name);
    } else {
      Log()->warn("hook {}: {}", h.name, h.detail);
    }
  }

  Restore();
  ThawAfterDaemonLoss();
  StartGuardian();
  SyncAdoption();  // workloads: the kernel pre-filter for agents writ did not launch
  ArmSelfProtection();

  ASSIGN_OR_RETURN(server_, api::Server::Start(
                                cfg_.run_dir + "/writd.sock",
                                [this](const api::PeerCred& p, int fd, const v1::Request& r) {
                                  Handle(p, fd, r);
                                }));
  // The HTTP server's threads run from StartCredentials on, but Metrics() reads loader_ and adopt_,
  // which are set since: the route exists only once Start has nothing left to set (before, a scrape
  // gets 404). AddRoute's lock orders these writes before every request's read.
  if (http::Server* h = cred_service_->http_server()) {
    h->AddRoute("GET", "/metrics", [this](const http::Request&) {
      http::Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = Metrics();
      return r;
    });
  }
  size_t n_intents;
  {
    absl::MutexLock lock(&policy_mu_);
    n_intents = policies_->intents().size();
  }
  Log()->info("writd {} started: mode {}, {} intents from {}, cgroups under {}, socket {}",
              kVersion, cfg_.mode, n_intents, cfg_.policies_dir, cgroups_->root(),
              cfg_.run_dir + "/writd.sock");
  return absl::OkStatus();
}

creds::TaskClaims Daemon::Claims(const Task& t) {
  creds::TaskClaims c;
  c.task_id = t.id;
  c.spiffe_id = t.spiffe_id;
  // chain = principal, delegating agents..., this agent: the credential's actors are all but the last.
  for (size_t i = 0; i + 1 < t.chain.size(); i++) c.principal_chain.push_back(t.chain[i]);
  c.intent = t.intent;
  c.deadline = t.deadline;
  return c;
}

std::optional<creds::TaskClaims> Daemon::ClaimsForCgroup(const std::string& cgroup_path) const {
  // "/<subtree>/<task-id>[/nested...]": only a live task's processes are anyone.
  std::string prefix = "/" + cfg_.cgroup_subtree + "/";
  if (!absl::StartsWith(cgroup_path, prefix)) return std::nullopt;
  std::string rest = cgroup_path.substr(prefix.size());
  std::string id = rest.substr(0, rest.find('/'));
  std::shared_ptr<Task> t = registry_.Find(id);
  if (!t || t->state.load() == TaskState::kEnded) return std::nullopt;
  return Claims(*t);
}

absl::Status Daemon::StartCredentials() {
  creds::CredentialConfig cc;
  cc.state_dir = cfg_.state_dir;
  cc.run_dir = cfg_.run_dir;
  cc.trust_domain = cfg_.trust_domain;
  cc.http_addr = cfg_.http;
  cc.providers = cfg_.credential_providers;
  cc.task_lookup = [this](pid_t, uint64_t, const std::string& cgroup_path) {
    return ClaimsForCgroup(cgroup_path);
  };
  auto svc = creds::CredentialService::Start(cc);
  if (!svc.ok()) {
    return absl::Status(svc.status().code(),
                        absl::StrCat("credential service: ", svc.status().message()));
  }
  cred_service_ = std::move(*svc);
  cred_service_->SetEventHook([this](const creds::CredentialEvent& ce) { OnCredentialEvent(ce); });
  InstallTaskCredentialHooks();
  return absl::OkStatus();
}

std::string Daemon::Metrics() {
  std::string o;
  auto head = [&o](const char* name, const char* type, const char* help) {
    absl::StrAppend(&o, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  };
  head("writ_events_total", "counter", "Events attributed to tasks, by kind.");
  for (uint16_t k = 1; k < WRIT_EV_KIND_MAX; k++) {
    absl::StrAppend(&o, "writ_events_total{kind=\"", decode::KindName(k), "\"} ",
                    events_by_kind_[k].load(), "\n");
  }
  head("writ_verdicts_total", "counter", "Judged events by verdict.");
  const char* vn[4] = {"allow", "violation", "needs_approval", "not_judged"};
  for (int i = 0; i < 4; i++) {
    absl::StrAppend(&o, "writ_verdicts_total{verdict=\"", vn[i], "\"} ", verdicts_[i].load(), "\n");
  }
  head("writ_actions_total", "counter", "Enforcement actions taken (kill, freeze, thaw).");
  absl::StrAppend(&o, "writ_actions_total ", actions_.load(), "\n");
  if (loader_) {
    bpf::Counters c = loader_->ReadCounters();
    head("writ_kernel_records_total", "counter", "Ring-buffer records emitted by the kernel, by kind.");
    for (uint16_t k = 1; k < WRIT_EV_KIND_MAX; k++) {
      absl::StrAppend(&o, "writ_kernel_records_total{kind=\"", decode::KindName(k), "\"} ",
                      c.emitted[k], "\n");
    }
    head("writ_kernel_drops_total", "counter", "Ring-buffer reserve failures in the kernel, by kind.");
    for (uint16_t k = 1; k < WRIT_EV_KIND_MAX; k++) {
      absl::StrAppend(&o, "writ_kernel_drops_total{kind=\"", decode::KindName(k), "\"} ",
                      c.dropped[k], "\n");
    }
    head("writ_kernel_fail_closed_kills_total", "counter",
         "Processes of enforce-mode tasks the kernel killed because the record writd had to judge was "
         "dropped (fail closed), by kind.");
    for (uint16_t k = 1; k < WRIT_EV_KIND_MAX; k++) {
      absl::StrAppend(&o, "writ_kernel_fail_closed_kills_total{kind=\"", decode::KindName(k), "\"} ",
                      c.fail_closed[k], "\n");
    }
    // Only with metrics.bpf_program_stats: without writd's stats switch the kernel's counters stand
    // still (or count someone else's accounting window), and a still counter would read as "no cost".
    if (loader_->program_stats()) {
      head("writ_bpf_program_runs_total", "counter", "BPF program invocations (bpf_stats).");
      auto stats = loader_->ReadProgramStats();
      for (const auto& p : stats) {
        absl::StrAppend(&o, "writ_bpf_program_runs_total{program=\"", p.name, "\"} ", p.run_cnt, "\n");
      }
      head("writ_bpf_program_run_seconds_total", "counter", "BPF program run time (bpf_stats).");
      for (const auto& p : stats) {
        absl::StrAppend(&o, "writ_bpf_program_run_seconds_total{program=\"", p.name, "\"} ",
                        absl::StrFormat("%.9f", p.run_time_ns / 1e9), "\n");
      }
    }
  }
  head("writ_userspace_drops_total", "counter", "Records lost in userspace, by reason.");
  absl::StrAppend(&o, "writ_userspace_drops_total{reason=\"decode\"} ", decode_errors_.load(), "\n");
  absl::StrAppend(&o, "writ_userspace_drops_total{reason=\"tail\"} ", tail_drops_.load(), "\n");
  absl::StrAppend(&o, "writ_userspace_drops_total{reason=\"unattributed\"} ", unattributed_.load(),
                  "\n");
  {
    absl::MutexLock lock(&out_mu_);
    head("writ_sink_delivered_total", "counter", "Lines delivered per sink.");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_delivered_total{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).delivered, "\n");
    }
    head("writ_sink_dropped_total", "counter",
         "Lines dropped per sink, by reason (queue_full, spool_full, on_stop).");
    for (size_t i = 0; i < sinks_->size(); i++) {
      const sinks::SinkStats st = sinks_->stats(i);
      const std::pair<const char*, uint64_t> by[] = {{"queue_full", st.dropped_queue_full},
                                                     {"spool_full", st.dropped_spool_full},
                                                     {"on_stop", st.dropped_on_stop}};
      for (const auto& [reason, n] : by) {
        absl::StrAppend(&o, "writ_sink_dropped_total{sink=\"", sinks_->name(i), "\",reason=\"",
                        reason, "\"} ", n, "\n");
      }
    }
    head("writ_sink_retries_total", "counter", "Failed send attempts per sink (retried).");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_retries_total{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).retries, "\n");
    }
    head("writ_sink_errors_total", "counter",
         "Failed send attempts per sink by cause (connect, tls_verify, tls, timeout, io, "
         "http_status, other).");
    for (size_t i = 0; i < sinks_->size(); i++) {
      const sinks::SinkStats st = sinks_->stats(i);
      for (size_t k = 0; k < sinks::kSinkErrorKinds; k++) {
        absl::StrAppend(&o, "writ_sink_errors_total{sink=\"", sinks_->name(i), "\",reason=\"",
                        sinks::SinkErrorName(static_cast<sinks::SinkError>(k)), "\"} ",
                        st.errors[k], "\n");
      }
    }
    head("writ_sink_spooled_total", "counter", "Lines written to the on-disk spool per sink.");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_spooled_total{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).spooled, "\n");
    }
    head("writ_sink_replayed_total", "counter", "Lines replayed from the spool per sink.");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_replayed_total{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).replayed, "\n");
    }
    head("writ_sink_resent_total", "counter",
         "Lines re-sent after a broken connection per sink (possible duplicates, same event id).");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_resent_total{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).resent, "\n");
    }
    head("writ_sink_queue_depth", "gauge", "Lines waiting in memory per sink.");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_queue_depth{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).queue_depth, "\n");
    }
    head("writ_sink_spool_bytes", "gauge", "Bytes spooled on disk per sink.");
    for (size_t i = 0; i < sinks_->size(); i++) {
      absl::StrAppend(&o, "writ_sink_spool_bytes{sink=\"", sinks_->name(i), "\"} ",
                      sinks_->stats(i).spool_bytes, "\n");
    }
  }
  if (journal_) {
    journal::JournalStats js = journal_->stats();
    head("writ_journal_records_total", "counter", "Records appended to the journal.");
    absl::StrAppend(&o, "writ_journal_records_total ", js.records, "\n");
    head("writ_journal_fsyncs_total", "counter", "fdatasync calls on the journal (journal_fsync).");
    absl::StrAppend(&o, "writ_journal_fsyncs_total ", js.fsyncs, "\n");
    head("writ_journal_errors_total", "counter", "Journal appends or fsyncs that failed.");
    absl::StrAppend(&o, "writ_journal_errors_total ", js.write_errors + js.fsync_errors, "\n");
    head("writ_journal_corrupt_tail", "gauge", "1 when start found a damaged journal tail.");
    absl::StrAppend(&o, "writ_journal_corrupt_tail ", int{js.new_segment_after_corruption}, "\n");
  }
  AppendAdoptMetrics(&o);
  head("writ_tasks_active", "gauge", "Tasks registered.");
  absl::StrAppend(&o, "writ_tasks_active ", registry_.size(), "\n");
  head("writ_approvals_pending", "gauge", "Approval requests waiting for a human.");
  absl::StrAppend(&o, "writ_approvals_pending ", approvals_.size(), "\n");
  if (cred_service_) {
    auto depth = cred_service_->OutboxDepth();
    head("writ_revocation_outbox_depth", "gauge", "External revocations not yet acknowledged.");
    absl::StrAppend(&o, "writ_revocation_outbox_depth ", depth.ok() ? *depth : -1, "\n");
  }
  head("writ_verdict_latency_microseconds", "histogram",
       "Kernel timestamp of the syscall to the engine's verdict.");
  uint64_t cum = 0;
  for (int b = 0; b + 1 < kLatencyBuckets; b++) {
    cum += latency_buckets_[b].load();
    absl::StrAppend(&o, "writ_verdict_latency_microseconds_bucket{le=\"", kLatencyBoundsUs[b], "\"} ",
                    cum, "\n");
  }
  absl::StrAppend(&o, "writ_verdict_latency_microseconds_bucket{le=\"+Inf\"} ",
                  latency_count_.load(), "\n");
  absl::StrAppend(&o, "writ_verdict_latency_microseconds_sum ", latency_sum_us_.load(), "\n");
  absl::StrAppend(&o, "writ_verdict_latency_microseconds_count ", latency_count_.load(), "\n");
  creds::AppendRedactionMetrics(Redactor(), &o);  // writ_redactions_total{rule}
  return o;
}

void Daemon::OnCredentialEvent(const creds::CredentialEvent& ce) {
  v1::Event e;
  InitSynthetic(&e, "credential");
  if (std::shared_ptr<Task> t = registry_.Find(ce.task_id)) {
    FillAgent(*t, &e);
  } else {
    e.mutable_agent()->set_task_id(ce.task_id);
  }
  v1::Credential* c = e.mutable_credential();
  c->set_type(ce.type);
  c->set_jti(ce.jti);
  c->set_provider(ce.provider);
  c->set_operation(ce.operation);
  if (ce.expires != absl::InfiniteFuture()) c->set_expires(Rfc3339(ce.expires));
  // Provider errors are ours, but a server's message could echo what it was given: Emit redacts it.
  if (!ce.detail.empty()) c->set_detail(ce.detail);
  Emit(e);
}

// ---------------------------------------------------------------------------------------------------
// Pipeline thread

void Daemon::Run() {
  const int drain_ms = std::max<int>(1, absl::ToInt64Milliseconds(cfg_.drain_interval));
  // This thread only: the sinks, API and credential threads keep the default priority.
  if (cfg_.pipeline_nice != 0 &&
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), cfg_.pipeline_nice) != 0) {
    Log()->warn("pipeline_nice {}: {}; the pipeline runs at the default priority", cfg_.pipeline_nice,
                std::strerror(errno));
  }
  absl::Time next_housekeeping = absl::Now();
  while (!stop_.load()) {
    loader_->Poll(drain_ms);
    CommitOutput();  // the drained records go to the sinks as one batch
    if (reload_.exchange(false)) {
      ReloadPolicies();
      SyncAdoption();
    }
    absl::Time now = absl::Now();
    if (now >= next_housekeeping) {
      AdoptHeartbeat();
      Housekeeping();
      CommitOutput();
      next_housekeeping = now + cfg_.housekeeping_interval;
    }
  }
  // Clean shutdown: stop accepting, drain what the kernel holds, detach (loader dtor), flush sinks.
  const absl::Time shutdown_start = absl::Now();
  auto since = [](absl::Time t) { return absl::ToInt64Milliseconds(absl::Now() - t); };
  StopAdoption();  // no exec is stopped for adoption once nobody would continue it
  server_->Stop();
  loader_->Drain();
  bpf::Counters c = loader_->ReadCounters();
  uint64_t emitted = 0, dropped = 0;
  for (int k = 0; k < WRIT_EV_KIND_MAX; k++) {
    emitted += c.emitted[k];
    dropped += c.dropped[k];
  }
  Log()->info("shutdown: {} records emitted by the kernel, {} dropped in the kernel, {} decoded, "
              "{} decode errors, {} unattributed, {} tail drops, {} tasks still registered",
              emitted, dropped, decoder_.stats().decoded, decode_errors_.load(),
              unattributed_.load(), tail_drops_.load(), registry_.size());
  if (guardian_pid_ > 0 && registry_.size() == 0) {
    // Nothing left to protect: the guardian releases its links.
    kill(guardian_pid_, SIGTERM);
    waitpid(guardian_pid_, nullptr, 0);
    unlink((cfg_.run_dir + "/guardian.pid").c_str());
  } else if (guardian_pid_ > 0 && cfg_.on_daemon_loss == "freeze") {
    // A clean stop with tasks left: freeze them here (the guardian keeps the programs attached).
    {
      std::string marker;
      for (const auto& t : registry_.All()) {
        if (cgroups_->Freeze(t->id, true).ok()) absl::StrAppend(&marker, t->id, "\n");
      }
      (void)WriteFileCreate(GuardianMarker(), marker);
      Log()->warn("on_daemon_loss freeze: {} tasks frozen until writd returns", registry_.size());
    }
  }
  const int64_t guardian_ms = since(shutdown_start);
  const absl::Time creds_start = absl::Now();
  if (cred_service_) cred_service_->Stop();  // its HTTP thread serves /metrics, which reads the loader
  const int64_t creds_ms = since(creds_start);
  const absl::Time detach_start = absl::Now();
  if (registry_.size() == 0) {
    loader_->Unpin();  // nothing to protect: leave nothing of writ in the kernel
    rmdir(cgroups_->root().c_str());  // the empty subtree too (fails harmlessly if not empty)
  } else {
    Log()->warn("{} tasks still running: their in-kernel enforcement stays pinned and the next "
                "writd re-adopts them", registry_.size());
  }
  loader_.reset();
  const int64_t detach_ms = since(detach_start);
  StopJournal();  // every queued finding and action is in the journal before the sinks stop
  absl::MutexLock lock(&out_mu_);
  const absl::Time sinks_start = absl::Now();
  // One budget for all sinks, so the service stops in bounded time; whatever is undelivered by then
  // goes to each sink's spool (or its drop counter), nothing is lost silently.
  sinks_->Stop(absl::Seconds(2));
  Log()->info("shutdown took {} ms: drain and guardian {} ms, credentials {} ms, detach {} ms, sinks {} ms",
              since(shutdown_start), guardian_ms, creds_ms, detach_ms, since(sinks_start));
  for (auto& s : subscribers_) {
    absl::MutexLock l(&s->mu);
    s->closed = true;
    s->cv.SignalAll();
  }
}

std::shared_ptr<Task> Daemon::TaskFor(uint64_t cgroup_id) {
  uint64_t gen = registry_.generation();
  if (cached_task_ && cached_task_->cgroup_id == cgroup_id && gen == cached_generation_) {
    return cached_task_;
  }
  cached_task_ = registry_.FindByCgroup(cgroup_id);
  cached_generation_ = gen;
  return cached_task_;
}

void Daemon::OnRecord(const void* data, size_t size) {
  if (decode::IsAdoptRecord(data, size)) {  // an exec outside every task: see adopt.cc
    OnAdoptCandidate(data, size);
    return;
  }
  decode::RecordInfo info;
  // Decode clears the event, which would delete the agent and its strings; FillAgent refills it for
  // every attributed record, so keep it (and its buffers) aside instead.
  if (ev_.has_agent()) spare_agent_.reset(ev_.release_agent());
  if (!decoder_.Decode(data, size, &ev_, &info).ok()) {
    decode_errors_++;
    return;
  }
  std::shared_ptr<Task> task = TaskFor(info.cgroup_id);
  if (!task) {
    unattributed_++;  // a record from a task already removed: counted, never silently gone
    return;
  }
  Bump(events_by_kind_[info.kind & 15]);
  // The agent is the task's identity: when this record's task is the one the kept agent was filled
  // for, it is already right (tasks' identity fields never change once registered).
  const bool agent_current = spare_agent_ && agent_task_ == task;
  if (spare_agent_) {
    if (!agent_current) spare_agent_->Clear();
    ev_.set_allocated_agent(spare_agent_.release());
  }
  if (!agent_current) {
    FillAgent(*task, &ev_);
    agent_task_ = task;
  }

  // Process table: exact lineage and the exe of every process, keyed by (tgid, start time).
  v1::Process* p = ev_.mutable_process();
  bool created = false;
  identity::ProcessInfo* pi = procs_.Upsert(info.tgid, info.start_time_ns, &created);
  if (pi) {
    if (created) {
      pi->cgroup_id = info.cgroup_id;
      pi->ppid = p->ppid();
      task->live_processes++;
    }
    switch (info.kind) {
      case WRIT_EV_EXEC:
        // argv is judged as it is and redacted before it is emitted (below).
        if (info.flags & WRIT_F_SCRIPT) ResolveScript(info, p);
        pi->exe = p->exe();
        pi->args.assign(p->args().begin(), p->args().end());
        break;
      case WRIT_EV_EXIT:
        p->set_exe(pi->exe);
        procs_.Erase(info.tgid, info.start_time_ns);
        task->live_processes--;
        break;
      default:
        p->set_exe(pi->exe);
        break;
    }
    if (created || info.kind == WRIT_EV_EXIT) procs_entries_.store(procs_.size(), std::memory_order_relaxed);
  }
  if (info.kind == WRIT_EV_SELF) {
    JudgeSelf(*task, ev_, info);
  } else if (task->compiled && task->mode != "record") {
    Judge(*task, ev_, info);
  }
  // Judged on what happened, emitted without secrets: every string of the event is redacted before the
  // journal, the sinks and `writ tail` see it (the kept agent only when FillAgent refilled it above).
  const creds::RedactionReport red = Redactor().RedactEvent(&ev_, {.agent = !agent_current});
  Emit(ev_, /*batch=*/true, /*redacted=*/true);
  if (red.argv_marks > 0 && info.kind == WRIT_EV_EXEC) EmitSecretInArgv(*task, ev_, red);
  if (deferred_responses_) {
    const intent::Rule* rule = deferred_responses_;
    deferred_responses_ = nullptr;
    RunResponses(*task, ev_, rule->responses, ev_.finding().reason());
  }
  if (!deferred_self_responses_.empty()) {
    std::vector<std::string> responses;
    responses.swap(deferred_self_responses_);
    RunResponses(*task, ev_, responses, ev_.finding().reason());
  }
}

// A shebang exec: the kernel ran the interpreter and gave the script only as the name passed to
// execve. In enforce mode the process is stopped at this point (WRIT_TASK_EXEC_SCRIPT), so its cwd
// and fds are the ones the kernel used. The kernel's copy of the name holds WRIT_NAME_MAX - 1 bytes;
// a longer name is taken whole from argv, where binfmt_script put it.
void Daemon::ResolveScript(const decode::RecordInfo& info, v1::Process* p) {
  std::string name = p->filename();
  if (name.size() >= WRIT_NAME_MAX - 1) {
    std::string whole = identity::ArgWithPrefix(static_cast<pid_t>(info.tgid), name);
    if (!whole.empty()) name = std::move(whole);
  }
  std::string script = identity::ResolveProcessPath(static_cast<pid_t>(info.tgid), name,
                                                    /*follow_symlinks=*/true);
  // Unresolvable (the process is gone): the name as passed; a deny of an absolute path still holds.
  p->set_script(script.empty() ? name : std::move(script));
}

namespace {

// What a finding's reason names: the program, script, destination or file the verdict was about.
std::string FindingTarget(const v1::Event& ev, const intent::Verdict& v) {
  if (ev.kind() == "exec") {
    if (v.by_script) return absl::StrCat(ev.process().script(), " (run by ", ev.process().exe(), ")");
    return ev.process().exe();
  }
  if (ev.kind() == "connect") return absl::StrCat(ev.network().dst_ip(), ":", ev.network().dst_port());
  if (v.by_file_id) {
    return absl::StrCat(ev.file().path(), " (the same file under another name: a hard link or bind mount)");
  }
  return ev.file().path();
}

}  // namespace

void Daemon::Judge(Task& task, v1::Event& ev, const decode::RecordInfo& info) {
  intent::EvalContext ctx;
  ctx.now = absl::FromUnixNanos(static_cast<int64_t>(info.ktime_ns) + boot_to_unix_ns_);
  ctx.live_processes = task.live_processes.load();
  if (ev.kind() == "open" && ev.file().unresolved() && !ev.file().path().empty() &&
      ev.file().path()[0] != '/') {
    // A failed open carries the string as passed. Best effort: relative to the process's cwd (exact for
    // AT_FDCWD, the common case); the path stays flagged unresolved.
    std::string abs = identity::ResolveProcessPath(static_cast<pid_t>(info.tgid), ev.file().path(),
                                                   /*follow_symlinks=*/false);
    if (!abs.empty()) ev.mutable_file()->set_path(std::move(abs));
  }
  intent::Verdict v = intent::Evaluate(*task.compiled, ev, ctx);
  if (v.kind == intent::Verdict::kViolation && ev.kind() == "open" && ev.file().result() < 0 &&
      absl::EndsWith(v.rule->id, ".default")) {
    // A failed open accessed nothing: the allow-list default does not apply (a shell probing PATH, git
    // probing optional files). An explicit deny rule still does: the attempt itself is the finding.
    v.kind = intent::Verdict::kAllow;
    v.rule = nullptr;
  }
  Bump(verdicts_[v.kind & 3]);
  int64_t lat_us = (NowBootNs() - static_cast<int64_t>(info.ktime_ns)) / 1000;
  if (lat_us < 0) lat_us = 0;
  const int bucket = static_cast<int>(
      std::lower_bound(std::begin(kLatencyBoundsUs), std::end(kLatencyBoundsUs), lat_us) -
      std::begin(kLatencyBoundsUs));
  Bump(latency_buckets_[bucket]);
  Bump(latency_sum_us_, static_cast<uint64_t>(lat_us));
  Bump(latency_count_);
  if (v.kind == intent::Verdict::kNotJudged) {
    // Not judged by the intent, but a kernel stop must never be left hanging.
    if (info.flags & WRIT_F_KERNEL_STOP) {
      (void)actions::SignalProcess(info.tgid, info.start_time_ns, SIGCONT);
    }
    return;
  }
  ev.set_verdict(intent::VerdictName(v.kind));
  if (v.kind == intent::Verdict::kAllow) {
    ev.set_outcome("allowed");
    // The kernel stopped an exec it could not decide (glob or argv rule): let it run.
    if (info.flags & WRIT_F_KERNEL_STOP) {
      (void)actions::SignalProcess(info.tgid, info.start_time_ns, SIGCONT);
    }
    return;
  }
  v1::Finding* f = ev.mutable_finding();
  f->set_rule(v.rule->id);
  f->set_category(intent::CategoryName(v.rule->category));
  f->set_reason(absl::StrCat(v.rule->reason, ": ", FindingTarget(ev, v)));
  for (const auto& fw : v.rule->frameworks) f->add_frameworks(fw);
  for (const auto& r : v.rule->responses) f->add_responses(r);
  f->set_severity(v.rule->severity);
  violations_++;
  Enforce(task, ev, info, v);
}

void Daemon::Enforce(Task& task, v1::Event& ev, const decode::RecordInfo& info,
                     const intent::Verdict& v) {
  const bool enforce = task.mode == "enforce";
  const bool kernel_denied = info.flags & WRIT_F_KERNEL_DENY;
  const bool kernel_stopped = info.flags & WRIT_F_KERNEL_STOP;

  if (!enforce) {
    ev.set_outcome("would_deny");
    return;
  }

  if (v.kind == intent::Verdict::kNeedsApproval) {
    // The approver, the approvals store and the hash see the action without its secrets (the marks
    // are keyed per secret, so the hash still binds the approval to this exact action).
    Redactor().RedactEvent(&ev);
    std::string hash = ActionHash(ev);
    if (approvals_.IsGranted(task.id, hash)) {
      ev.set_verdict("allow");
      ev.clear_finding();
      ev.set_outcome("allowed");
      if (kernel_stopped) (void)actions::SignalProcess(info.tgid, info.start_time_ns, SIGCONT);
      return;
    }
    // Stop the actor before it proceeds: exec was stopped by the kernel; connect got EPERM; anything
    // else is stopped now. Then freeze the task while a human decides.
    if (ev.kind() == "exec" && !kernel_stopped) {
      (void)actions::SignalProcess(info.tgid, info.start_time_ns, SIGSTOP);
    }
    ev.set_outcome(ev.kind() == "connect" && kernel_denied ? "prevented" : "stopped");
    ev.set_enforcement(kernel_stopped ? "kernel-signal" : kernel_denied ? "cgroup-bpf" : "userspace");
    FreezeTask(task, true, &ev, "approval requested");
    ApprovalRequest req;
    req.task_id = task.id;
    req.kind = ev.kind();
    req.action = ActionText(ev);
    req.action_hash = hash;
    req.created = absl::Now();
    req.expires = req.created + task.compiled->approval_timeout(v.rule);
    req.pid = info.tgid;
    req.start_ns = info.start_time_ns;
    req.rule = v.rule->id;
    req.responses = v.rule->responses;
    req.cause = ev;
    std::string id = approvals_.Add(req);
    v1::Event ar;
    InitSynthetic(&ar, "approval_request");
    FillAgent(task, &ar);
    *ar.mutable_process() = ev.process();
    if (ev.has_file()) *ar.mutable_file() = ev.file();
    if (ev.has_network()) *ar.mutable_network() = ev.network();
    v1::Approval* a = ar.mutable_approval();
    a->set_id(id);
    a->set_action(req.action);
    a->set_action_hash(hash);
    a->set_expires(Rfc3339(req.expires));
    *ar.mutable_finding() = ev.finding();
    Emit(ar);
    return;
  }

  // A violation. Prevention where the kernel did it; otherwise the acting process dies now.
  if (kernel_denied && (info.flags & WRIT_F_LSM)) {
    ev.set_outcome("prevented");  // refused by BPF-LSM before the exec happened
    ev.set_enforcement("lsm");
  } else if (loader_->lsm_active() && ev.kind() == "open" && ev.file().result() == -EPERM) {
    ev.set_outcome("prevented");  // file_open refused it: nothing was opened
    ev.set_enforcement("lsm");
  } else if (kernel_denied) {
    if (ev.kind() == "connect") {
      ev.set_outcome("prevented");
      ev.set_enforcement("cgroup-bpf");
    } else if (ev.kind() == "exec") {
      ev.set_outcome("killed");  // SIGKILL before the new image's first instruction
      ev.set_enforcement("kernel-signal");
    } else {
      ev.set_outcome("killed_after");  // the open happened; the process died at syscall exit
      ev.set_enforcement("kernel-signal");
    }
  } else {
    // With a kill response the whole task dies now, before the acting process: killed alone first, its
    // parent (the agent's shell) would be woken by its death and could run its next command before the
    // deferred task kill lands. The response's action event still follows the violation's.
    if (Has(v.rule->responses, "kill")) {
      if (absl::Status kst = cgroups_->Kill(task.id); !kst.ok()) {
        Log()->error("task {}: kill: {}", task.id, std::string(kst.message()));
      }
    }
    absl::Status st = actions::SignalProcess(info.tgid, info.start_time_ns, SIGKILL);
    // An exec stopped by the kernel never ran an instruction: killing it now still prevents it.
    ev.set_outcome(kernel_stopped ? "killed" : "killed_after");
    ev.set_enforcement(kernel_stopped ? "kernel-signal" : "userspace");
    if (!st.ok() && !absl::IsNotFound(st)) {
      Log()->error("task {}: kill pid {}: {}", task.id, info.tgid, std::string(st.message()));
    }
  }
  task.violated = true;
  // A revocation takes effect now, in memory, like the kill above: its durable record and events follow
  // in RunResponses, after the violating event's own (journal-fsynced) emission.
  if (cred_service_ && Has(v.rule->responses, "revoke")) cred_service_->MarkRevoked(task.id);
  // The responses (and their action events) run after the violating event has been emitted, so a
  // SIEM sees cause before effect; the acting process is already dead or stopped by now.
  deferred_responses_ = v.rule;
}

// A sub-agent acts on authority delegated by its parent: when the parent ends or is revoked, the child
// is revoked at once (with an `action` event), killed, and ends with a task_end naming why. Grandchildren
// follow recursively. A parent is often killed, revoked and ended in turn, and each cascade reaches the
// same descendants: each one is revoked and killed once (one `action` event each), by the first cascade.
void Daemon::EndChildren(Task& task, const char* end_reason, const std::string& why) {
  for (const auto& c : ChildrenOf(registry_, task.id)) {
    const char* none = nullptr;
    c->end_reason.compare_exchange_strong(none, end_reason);
    if (!c->revoked_by_parent.exchange(true)) RevokeTask(*c, 0, why);
    EndChildren(*c, end_reason, "parent task " + c->id + " ended: " + why);
    if (!c->killed_by_parent.exchange(true)) KillTask(*c, nullptr, why);
  }
}

absl::Status Daemon::InstallTask(const std::shared_ptr<Task>& task, pid_t place) {
  // Each step undoes the ones before it when it fails: nothing is left behind.
  ASSIGN_OR_RETURN(task->slot, registry_.AllocateSlot());
  auto cgid = cgroups_->CreateTask(task->id);
  if (!cgid.ok()) {
    registry_.FreeSlot(task->slot);
    return cgid.status();
  }
  task->cgroup_id = *cgid;
  task->cgroup_path = cgroups_->TaskDir(task->id);
  absl::Status st = Arm(*task);  // the task map entry exists before any process joins the cgroup
  if (st.ok()) st = registry_.Add(task);
  if (st.ok() && place > 0) {
    st = WriteFile(task->cgroup_path + "/cgroup.procs", std::to_string(place));
    if (!st.ok()) {
      st = absl::Status(st.code(), absl::StrCat("place pid ", place, ": ", st.message()));
      registry_.Remove(task->id);
    }
  }
  if (!st.ok()) {
    (void)loader_->RemoveTask(task->cgroup_id);
    loader_->ClearTables(task->slot);
    (void)cgroups_->RemoveTask(task->id);
    registry_.FreeSlot(task->slot);
  }
  return st;
}

v1::Event Daemon::TaskStartEvent(const Task& task) {
  v1::Event e;
  InitSynthetic(&e, "task_start");
  FillAgent(task, &e);
  v1::TaskInfo* ti = e.mutable_task();
  ti->set_cgroup(task.cgroup_path);
  if (task.deadline != absl::InfiniteFuture()) ti->set_deadline(Rfc3339(task.deadline));
  for (const auto& [k, v] : task.params) (*ti->mutable_params())[k] = v;
  for (const auto& c : task.command) ti->add_command(c);
  return e;
}

void Daemon::RunResponses(Task& task, const v1::Event& cause,
                          const std::vector<std::string>& responses, const std::string& reason) {
  if (Has(responses, "kill")) {
    KillTask(task, &cause, reason);
  } else if (Has(responses, "freeze")) {
    FreezeTask(task, true, &cause, reason);
  }
  if (Has(responses, "revoke") && creds_.revoke) {
    RevokeTask(task, cause.ktime_ns(), reason);
    // A sub-agent holds authority delegated by this task: it cannot outlive the parent's.
    EndChildren(task, "parent_revoked", "parent task " + task.id + " revoked: " + reason);
  }
}

// Revokes the task's credentials and says so in an `action` event whose result is what happened: a
// revocation that failed in part (e.g. its durable record could not be written) is not reported "ok".
void Daemon::RevokeTask(Task& task, uint64_t cause_ktime_ns, const std::string& reason) {
  if (!creds_.revoke) return;
  absl::Status st = creds_.revoke(task, reason);
  v1::Event a = ActionEvent(task, "revoke", st.ok() ? "ok" : std::string(st.message()), cause_ktime_ns,
                            task.id, reason);
  Emit(a);
}

bool Daemon::KillTask(Task& task, const v1::Event* cause, const std::string& reason) {
  absl::Status st = cgroups_->Kill(task.id);
  // The task ends when its cgroup empties; it did not exit by itself. A cause set first (a parent's
  // cascade, the deadline) wins.
  const char* none = nullptr;
  if (st.ok()) task.end_reason.compare_exchange_strong(none, "killed");
  // Freezing is undone by the kill: a frozen task's processes die too (cgroup.kill works on frozen
  // cgroups).
  v1::Event a = ActionEvent(task, "kill", st.ok() ? "ok" : std::string(st.message()),
                            cause ? cause->ktime_ns() : 0, task.id, reason);
  Emit(a);
  actions_++;
  // Killing a parent kills its sub-agents (recursively); each ends when its cgroup empties.
  for (const auto& c : ChildrenOf(registry_, task.id)) {
    none = nullptr;
    c->end_reason.compare_exchange_strong(none, "parent_killed");
    if (!c->killed_by_parent.exchange(true)) KillTask(*c, cause, "parent task " + task.id + " killed: " + reason);
  }
  return st.ok();
}

bool Daemon::FreezeTask(Task& task, bool frozen, const v1::Event* cause,
                        const std::string& reason) {
  absl::Status st = cgroups_->Freeze(task.id, frozen);
  if (st.ok()) task.frozen = frozen;
  v1::Event a = ActionEvent(task, frozen ? "freeze" : "thaw",
                            st.ok() ? "ok" : std::string(st.message()),
                            cause ? cause->ktime_ns() : 0, task.id, reason);
  Emit(a);
  actions_++;
  return st.ok();
}

void Daemon::Housekeeping() {
  absl::Time now = absl::Now();
  procs_entries_.store(procs_.size(), std::memory_order_relaxed);  // also covers Restore's entries
  // Processes the kernel killed because their record could not be delivered have no event of their own
  // (the record is what was lost): say so in the log, at most once a second, besides the metric.
  if (loader_ && now - fail_closed_checked_ >= absl::Seconds(1)) {
    fail_closed_checked_ = now;
    bpf::Counters c = loader_->ReadCounters();
    uint64_t total = 0;
    for (uint64_t n : c.fail_closed) total += n;
    if (total > fail_closed_logged_) {
      Log()->warn("{} process(es) of enforce-mode tasks killed in the kernel: the ring buffer was full, "
                  "so the exec/open writd had to judge could not reach it (fail closed; "
                  "writ_kernel_fail_closed_kills_total)", total - fail_closed_logged_);
      fail_closed_logged_ = total;
    }
  }
  // Approvals that nobody decided in time: as if denied.
  for (ApprovalRequest& r : approvals_.TakeExpired(now)) {
    std::shared_ptr<Task> t = registry_.Find(r.task_id);
    if (!t) continue;
    v1::Event a = ActionEvent(*t, "deny", "ok", r.cause.ktime_ns(), r.id, "approval expired");
    a.mutable_approval()->set_id(r.id);
    a.mutable_approval()->set_reason("expired");
    Emit(a);
    (void)actions::SignalProcess(r.pid, r.start_ns, SIGKILL);
    FreezeTask(*t, false, &r.cause, "approval expired");
    RunResponses(*t, r.cause, r.responses, "approval expired: " + r.action);
  }

  std::vector<std::shared_ptr<Task>> empty;
  for (const std::shared_ptr<Task>& t : registry_.All()) {
    TaskState st = t->state.load();
    if (st == TaskState::kPending) {
      if (now - t->start > kPendingTimeout) {
        Log()->warn("task {}: launcher never reported its child; removing", t->id);
        EndTask(t, "aborted");
      }
      continue;
    }
    if (st != TaskState::kRunning) continue;
    if (now >= t->deadline) {
      KillTask(*t, nullptr, "deadline");
      t->violated = false;
      // The task ends below when its cgroup empties; name the reason now.
      t->state = TaskState::kEnded;
      ending_.push_back(t);
      continue;
    }
    auto populated = cgroups_->Populated(t->id);
    if (populated.ok() && !*populated) empty.push_back(t);
  }
  // Read "empty" before draining: a task's last exit record is in the ring buffer by the time its
  // cgroup reports unpopulated, so draining now puts it before task_end.
  loader_->Drain();
  for (const auto& t : empty) {
    const char* why = t->end_reason.load();
    EndTask(t, why ? why : "exited");
  }
  for (auto it = ending_.begin(); it != ending_.end();) {
    auto populated = cgroups_->Populated((*it)->id);
    if (!populated.ok() || !*populated) {
      loader_->Drain();
      std::shared_ptr<Task> t = *it;
      it = ending_.erase(it);
      EndTask(t, "deadline");
    } else {
      ++it;
    }
  }
}

void Daemon::EndTask(const std::shared_ptr<Task>& t, const std::string& reason) {
  t->state = TaskState::kEnded;
  (void)loader_->RemoveTask(t->cgroup_id);
  loader_->ClearTables(t->slot);
  for (ApprovalRequest& r : approvals_.TakeTask(t->id)) {
    (void)actions::SignalProcess(r.pid, r.start_ns, SIGKILL);
  }
  approvals_.ForgetTask(t->id);
  // A failure is logged by the revoke itself; provider revocations are queued regardless.
  if (creds_.revoke) creds_.revoke(*t, "task ended: " + reason).IgnoreError();
  // A parent that ends takes its sub-agents with it: killed now, revoked now, ended when empty.
  EndChildren(*t, "parent_ended", "parent task " + t->id + " ended: " + reason);
  v1::Event e;
  InitSynthetic(&e, "task_end");
  FillAgent(*t, &e);
  e.mutable_task()->set_reason(t->AbortReason().empty() ? reason : "aborted");
  e.mutable_task()->set_cgroup(t->cgroup_path);
  Emit(e);
  procs_.EraseTask(t->cgroup_id);
  procs_entries_.store(procs_.size(), std::memory_order_relaxed);
  absl::Status st = cgroups_->RemoveTask(t->id);
  if (!st.ok()) Log()->warn("task {}: {}", t->id, std::string(st.message()));
  registry_.Remove(t->id);
  registry_.FreeSlot(t->slot);
  if (store_) (void)store_->DeleteTask(t->id);
  Log()->info("task {} ended: {}", t->id, reason);
}

void Daemon::ReloadPolicies() {
  auto set = intent::LoadPolicyDir(cfg_.policies_dir);
  if (set.ok()) {
    if (absl::Status st = CheckIntentCredentials(*set); !st.ok()) set = st;
  }
  absl::MutexLock lock(&policy_mu_);
  if (!set.ok()) {
    policy_error_ = std::string(set.status().message());
    Log()->error("policy reload failed, the previous policy stays in force:\n{}", policy_error_);
    return;
  }
  policies_ = std::make_shared<const intent::PolicySet>(std::move(*set));
  policy_error_.clear();
  Log()->info("policies reloaded: {} intents", policies_->intents().size());
}

// ---------------------------------------------------------------------------------------------------
// Output

void Daemon::FillAgent(const Task& task, v1::Event* ev) const {
  v1::Agent* a = ev->mutable_agent();
  a->set_spiffe_id(task.spiffe_id);
  a->set_task_id(task.id);
  if (!task.principal.empty()) a->set_principal(task.principal);
  if (!task.intent.empty()) a->set_intent(task.intent);
  if (!task.parent_task.empty()) a->set_parent_task(task.parent_task);
  if (task.chain.size() > 1) {
    a->mutable_chain()->Clear();
    for (const auto& c : task.chain) a->add_chain(c);
  }
}

void Daemon::InitSynthetic(v1::Event* ev, const char* kind) {
  int64_t now = absl::ToUnixNanos(absl::Now());
  ev->set_id(absl::StrCat(boot_tag_, "-s", absl::Hex(now), "-", synthetic_seq_.fetch_add(1)));
  AppendRfc3339Nanos(now, ev->mutable_time());
  ev->set_ktime_ns(static_cast<uint64_t>(NowBootNs()));
  ev->set_kind(kind);
}

void Daemon::EmitSynthetic(v1::Event& ev) {
  if (ev.id().empty()) {
    std::string kind = ev.kind();
    InitSynthetic(&ev, kind.c_str());
  }
  Emit(ev);
}

v1::Event Daemon::ActionEvent(const Task& task, const std::string& type, const std::string& result,
                              uint64_t cause_ktime_ns, const std::string& target,
                              const std::string& reason) {
  v1::Event e;
  InitSynthetic(&e, "action");
  FillAgent(task, &e);
  v1::Action* a = e.mutable_action();
  a->set_type(type);
  a->set_result(result);
  a->set_target(target);
  a->set_reason(reason);
  if (cause_ktime_ns) {
    int64_t now = NowBootNs();
    a->set_latency_us(now > static_cast<int64_t>(cause_ktime_ns)
                          ? (now - static_cast<int64_t>(cause_ktime_ns)) / 1000
                          : 0);
  }
  return e;
}

void Daemon::CommitOutput() {
  if (journal_) {
    absl::MutexLock lock(&journal_mu_);
    if (!journal_queue_.empty()) journal_ready_ = true;
  }
  absl::MutexLock lock(&out_mu_);
  sinks_->Commit();
}

void Daemon::EmitSecretInArgv(const Task& task, const v1::Event& exec,
                              const creds::RedactionReport& r) {
  v1::Event e;
  InitSynthetic(&e, "secret");
  FillAgent(task, &e);
  *e.mutable_process() = exec.process();  // redacted already
  creds::FillSecretInArgvFinding(r, e.mutable_finding());
  Emit(e, /*batch=*/true);
}

void Daemon::Emit(v1::Event& ev, bool batch, bool redacted) {
  // Nothing leaves writd with a secret in it: not the journal, a sink, `writ tail` or a log line.
  if (!redacted) Redactor().RedactEvent(&ev);
  ev.set_host(host_);
  // Queued before the sinks get the event, appended (and fsynced) by the journal thread in this order.
  if (journal_ && journal::ShouldJournal(ev)) {
    absl::MutexLock lock(&journal_mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(journal_mu_) {
      return journal_stop_ || journal_queue_.size() < kJournalQueueMax;
    };
    journal_mu_.Await(absl::Condition(&room));  // a stalled disk slows writd; nothing is dropped
    if (!journal_stop_) {
      journal_queue_.push_back(ev);
      // The pipeline's batched records wait for its CommitOutput; anything else goes now.
      if (!batch || journal_queue_.size() >= kJournalQueueMax) journal_ready_ = true;
    } else {
      (void)journal_->Append(ev);  // after StopJournal (shutdown): write it here
    }
  }
  absl::MutexLock lock(&out_mu_);
  if (batch) {
    sinks_->Stage(ev);
  } else {
    sinks_->Submit(ev);  // commits whatever the pipeline staged before it too: order is kept
  }
  if (subscribers_.empty()) return;
  const bool violation = ev.verdict() == "violation" || ev.verdict() == "needs_approval";
  std::string frame;
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    Subscriber& s = **it;
    {
      absl::MutexLock l(&s.mu);
      if (s.closed) {
        it = subscribers_.erase(it);
        continue;
      }
    }
    ++it;
    if (s.filter.violations_only() && !violation) continue;
    if (!s.filter.agent().empty() && s.filter.agent() != ev.agent().spiffe_id()) continue;
    if (!s.filter.task().empty() && s.filter.task() != ev.agent().task_id()) continue;
    if (frame.empty()) {
      v1::Response r;
      *r.mutable_event() = ev;
      frame = r.SerializeAsString();
    }
    absl::MutexLock l(&s.mu);
    if (s.frames.size() >= 10000) {
      s.dropped++;
      tail_drops_++;
      continue;
    }
    s.frames.push_back(frame);
    s.cv.Signal();
  }
}

// ---------------------------------------------------------------------------------------------------
// Control

bool Daemon::PeerIsInTask(const api::PeerCred& peer) const {
  auto cg = identity::ProcessCgroup(peer.pid);
  if (!cg.ok()) return true;  // cannot tell: refuse what needs a human
  std::string prefix = "/" + cfg_.cgroup_subtree + "/";
  return absl::StartsWith(*cg, prefix);
}

void Daemon::Handle(const api::PeerCred& peer, int fd, const v1::Request& req) {
  v1::Response resp;
  switch (req.body_case()) {
    case v1::Request::kCreateTask:
      resp = CreateTask(peer, req.create_task());
      break;
    case v1::Request::kTaskStarted:
      resp = TaskStarted(peer, req.task_started());
      break;
    case v1::Request::kStatus:
      resp = Status();
      break;
    case v1::Request::kTail:
      Tail(fd, req.tail());
      return;
    case v1::Request::kKillTask:
    case v1::Request::kFreezeTask:
    case v1::Request::kThawTask:
    case v1::Request::kRevokeTask:
      resp = TaskAction(peer, req);
      break;
    case v1::Request::kListApprovals: {
      for (const ApprovalRequest& r : approvals_.List()) {
        v1::Approval* a = resp.mutable_approvals()->add_approvals();
        a->set_id(r.id);
        a->set_action(absl::StrCat(r.task_id, " ", r.action));
        a->set_action_hash(r.action_hash);
        a->set_expires(Rfc3339(r.expires));
        a->set_reason(r.rule);
      }
      resp.mutable_approvals();
      break;
    }
    case v1::Request::kDecideApproval:
      resp = Decide(peer, req.decide_approval());
      break;
    case v1::Request::kReloadPolicy: {
      if (PeerIsInTask(peer)) {
        resp = Error(absl::PermissionDeniedError("a process inside a task cannot reload policies"));
        break;
      }
      reload_.store(true);
      // The pipeline thread applies it; wait briefly so the caller sees the outcome.
      for (int i = 0; i < 200 && reload_.load(); i++) absl::SleepFor(absl::Milliseconds(10));
      absl::MutexLock lock(&policy_mu_);
      if (!policy_error_.empty()) {
        resp = Error(absl::InvalidArgumentError(
            absl::StrCat("reload failed, previous policy stays in force:\n", policy_error_)));
      } else {
        resp.mutable_reload()->set_intents(policies_->intents().size());
      }
      break;
    }
    default:
      resp = Error(absl::InvalidArgumentError("unknown or empty request"));
  }
  (void)api::WriteFrame(fd, resp);
}

v1::Response Daemon::CreateTask(const api::PeerCred& peer, const v1::CreateTaskRequest& req) {
  auto id = identity::ParseSpiffeId(req.spiffe_id());
  if (!id.ok()) return Error(id.status());

  auto task = std::make_shared<Task>();
  task->id = "t-" + RandomHex(6);
  task->spiffe_id = id->ToString();
  task->principal = req.principal();
  task->intent = req.intent();
  task->command.assign(req.command().begin(), req.command().end());
  task->owner_uid = peer.uid;
  task->start = absl::Now();
  task->mode = cfg_.mode;
  for (const auto& [k, v] : req.params()) task->params[k] = v;

  std::shared_ptr<Task> parent;
  if (!req.parent_task().empty()) {
    parent = registry_.Find(req.parent_task());
    if (!parent) {
      return Error(absl::NotFoundError(absl::StrCat("parent task ", req.parent_task(),
                                                    " does not exist")));
    }
    task->parent_task = parent->id;
    task->chain = parent->chain;
    task->deadline = parent->deadline;
    if (task->principal.empty()) task->principal = parent->principal;
  } else if (!task->principal.empty()) {
    task->chain.push_back(task->principal);
  }
  task->chain.push_back(task->spiffe_id);
  // A process inside a task may only delegate from its own task: otherwise a new top-level task (or
  // another task's child) would be a way out of its intent.
  if (auto cg = identity::ProcessCgroup(peer.pid);
      cg.ok() && absl::StartsWith(*cg, "/" + cfg_.cgroup_subtree + "/")) {
    std::string own = cg->substr(cfg_.cgroup_subtree.size() + 2);
    own = own.substr(0, own.find('/'));
    if (!parent || parent->id != own) {
      return Error(absl::PermissionDeniedError(absl::StrCat(
          "a process inside task ", own, " can only start sub-agents of it (writ run --parent ", own,
          ")")));
    }
  }

  if (!req.ttl().empty()) {
    auto ttl = ParseDuration(req.ttl());
    if (!ttl.ok()) return Error(absl::InvalidArgumentError(absl::StrCat("--ttl: ", ttl.status().message())));
    task->deadline = std::min(task->deadline, task->start + *ttl);
  }
  std::shared_ptr<const intent::PolicySet> set;
  const v1::Intent* spec = nullptr;
  if (!task->intent.empty()) {
    {
      absl::MutexLock lock(&policy_mu_);
      set = policies_;
    }
    const v1::Intent* in = set->Find(task->intent);
    spec = in;
    if (!in) {
      std::vector<std::string> names;
      for (const auto& i : set->intents()) names.push_back(i.name());
      return Error(absl::NotFoundError(absl::StrCat("unknown intent \"", task->intent,
                                                    "\" (loaded: ", absl::StrJoin(names, ", "),
                                                    ")")));
    }
    absl::flat_hash_map<std::string, std::string> params(task->params.begin(), task->params.end());
    auto compiled = intent::Compile(*in, params);
    if (!compiled.ok()) return Error(compiled.status());
    task->compiled = *compiled;
    // A sub-agent gets no authority its parent lacks (the parent's compiled intent, as it started).
    if (parent && parent->compiled) {
      absl::Status sub = intent::CheckSubset(*task->compiled, *parent->compiled);
      if (!sub.ok()) return Error(sub);
    }
    if (!task->compiled->mode().empty()) task->mode = task->compiled->mode();
    if (task->compiled->ttl() != absl::InfiniteDuration()) {
      task->deadline = std::min(task->deadline, task->start + task->compiled->ttl());
    }
  } else if (!task->params.empty()) {
    return Error(absl::InvalidArgumentError("--param needs --intent"));
  }
  if (parent && parent->compiled && !task->compiled) {
    return Error(absl::PermissionDeniedError(absl::StrCat(
        "a task without an intent (unrestricted) is not allowed by parent intent ",
        parent->compiled->name())));
  }

  // Nothing is created before every check has passed.
  if (absl::Status st = InstallTask(task, 0); !st.ok()) return Error(st);
  SaveTask(*task, task->intent.empty() ? nullptr : spec);
  // task_start precedes every event of the task: the command has not been started yet.
  v1::Event e = TaskStartEvent(*task);
  e.mutable_process()->set_pid(peer.pid);
  e.mutable_process()->set_uid(peer.uid);
  Emit(e);

  v1::Response resp;
  v1::CreateTaskResponse* r = resp.mutable_create_task();
  r->set_task_id(task->id);
  r->set_cgroup_path(task->cgroup_path);
  if (task_creds_ && task->compiled && !task->compiled->credentials().empty()) {
    r->set_credentials_dir(task_creds_->DirFor(task->id));
  }
  if (task->deadline != absl::InfiniteFuture()) r->set_deadline(Rfc3339(task->deadline));
  Log()->info("task {} created: {} for {} intent {} mode {}", task->id, task->spiffe_id,
              task->principal.empty() ? "-" : task->principal,
              task->intent.empty() ? "-" : task->intent, task->mode);
  return resp;
}

absl::Status Daemon::Arm(const Task& task) {
  writ_task_info info{};
  info.slot = task.slot;
  info.generation = static_cast<uint64_t>(absl::ToUnixNanos(task.start));
  if (task.compiled && task.mode != "record") {
    intent::KernelTables kt = task.compiled->kernel_tables();
    RETURN_IF_ERROR(InstallKernelTables(task, kt));
    if (task.mode == "enforce") {
      info.flags |= WRIT_TASK_ENFORCE;
      // Userspace judges what the tables cannot: its verdicts must not wait for the batch timer.
      info.flags |= WRIT_TASK_PROMPT;
      const auto& resp = task.compiled->responses();
      if (std::find(resp.begin(), resp.end(), "kill") != resp.end()) {
        info.flags |= WRIT_TASK_KILL_LINEAGE;
      }
    }
    if (kt.exec_judged && kt.exec_default_deny && !kt.exec_has_globs) info.flags |= WRIT_TASK_EXEC_TABLE;
    if (kt.exec_judged && kt.exec_has_globs) info.flags |= WRIT_TASK_EXEC_USER;
    if (kt.exec_script_judged) info.flags |= WRIT_TASK_EXEC_SCRIPT;
    if (kt.net_judged && kt.net_default_deny) info.flags |= WRIT_TASK_NET_TABLE;
    // The per-open path hash and prefix lookups only matter where the kernel acts on them.
    const bool file_comp = !kt.file_deny_leaf.empty() || !kt.file_deny_any_component.empty();
    if (task.compiled->file_deny_ids_truncated()) {
      Log()->warn("task {}: intent {} denies more files than writ lists by identity ({}): hard links of the "
                  "others are judged by their own names only",
                  task.id, task.compiled->name(), task.compiled->file_deny_id_count());
    }
    if (task.mode == "enforce" &&
        (!kt.file_deny_exact.empty() || !kt.file_deny_prefix.empty() || file_comp)) {
      info.flags |= WRIT_TASK_FILE_TABLE;
      // Per-component hashing and lookups only for tasks that have component entries.
      if (file_comp) info.flags |= WRIT_TASK_FILE_COMP;
    }
  }
  // Self-protection applies with or without an intent (threat-model.md, Self-protection).
  if (task.mode == "enforce") info.flags |= WRIT_TASK_SELF_KILL;
  return loader_->AddTask(task.cgroup_id, info);
}

void Daemon::SaveTask(const Task& t, const v1::Intent* spec) {
  v1::TaskRecord r;
  r.set_id(t.id);
  r.set_spiffe_id(t.spiffe_id);
  r.set_principal(t.principal);
  r.set_intent(t.intent);
  r.set_parent_task(t.parent_task);
  for (const auto& c : t.chain) r.add_chain(c);
  for (const auto& [k, v] : t.params) (*r.mutable_params())[k] = v;
  for (const auto& c : t.command) r.add_command(c);
  r.set_mode(t.mode);
  r.set_cgroup_path(t.cgroup_path);
  r.set_cgroup_id(t.cgroup_id);
  r.set_slot(t.slot);
  r.set_owner_uid(t.owner_uid);
  r.set_start_unix_ns(absl::ToUnixNanos(t.start));
  if (t.deadline != absl::InfiniteFuture()) r.set_deadline_unix_ns(absl::ToUnixNanos(t.deadline));
  if (spec) *r.mutable_intent_spec() = *spec;
  if (absl::Status st = store_->PutTask(r); !st.ok()) {
    Log()->error("task {}: persist: {}", t.id, std::string(st.message()));
  }
}

// Takes back the tasks a previous writd left: a task whose cgroup is gone ended while writd was down
// (task_end, credentials revoked); a live one is re-armed (maps and tables, idempotent when they were
// pinned) with the intent it started with, and its processes re-read from its cgroup.
void Daemon::Restore() {
  auto recs = store_->Tasks();
  if (!recs.ok()) {
    Log()->error("state store: {}", std::string(recs.status().message()));
    return;
  }
  if (loader_->adopted()) Log()->info("re-adopted pinned BPF maps and programs");
  for (const v1::TaskRecord& r : *recs) {
    auto t = std::make_shared<Task>();
    t->id = r.id();
    t->spiffe_id = r.spiffe_id();
    t->principal = r.principal();
    t->intent = r.intent();
    t->parent_task = r.parent_task();
    t->chain.assign(r.chain().begin(), r.chain().end());
    for (const auto& [k, v] : r.params()) t->params[k] = v;
    t->command.assign(r.command().begin(), r.command().end());
    t->mode = r.mode();
    t->cgroup_path = r.cgroup_path();
    t->cgroup_id = r.cgroup_id();
    t->slot = r.slot();
    t->owner_uid = r.owner_uid();
    t->start = absl::FromUnixNanos(r.start_unix_ns());
    if (r.deadline_unix_ns()) t->deadline = absl::FromUnixNanos(r.deadline_unix_ns());
    auto id_now = identity::CgroupId(t->cgroup_path);
    bool alive = id_now.ok() && *id_now == t->cgroup_id;
    if (alive && r.has_intent_spec()) {
      absl::flat_hash_map<std::string, std::string> params(t->params.begin(), t->params.end());
      auto compiled = intent::Compile(r.intent_spec(), params);
      if (compiled.ok()) {
        t->compiled = *compiled;
      } else {
        Log()->error("task {}: intent no longer compiles ({}); its processes are killed",
                     t->id, std::string(compiled.status().message()));
        (void)cgroups_->Kill(t->id);
      }
    }
    if (!alive || !registry_.ClaimSlot(t->slot) || !Arm(*t).ok() || !registry_.Add(t).ok()) {
      (void)loader_->RemoveTask(t->cgroup_id);
      loader_->ClearTables(t->slot);
      if (creds_.revoke) creds_.revoke(*t, "task ended while writd was down").IgnoreError();  // logged
      v1::Event e;
      InitSynthetic(&e, "task_end");
      FillAgent(*t, &e);
      e.mutable_task()->set_reason(alive ? "aborted" : "exited");
      e.mutable_task()->set_cgroup(t->cgroup_path);
      Emit(e);
      if (alive) (void)cgroups_->Kill(t->id);
      (void)store_->DeleteTask(t->id);
      Log()->warn("task {}: not restored ({})", t->id, alive ? "could not re-arm" : "ended while down");
      continue;
    }
    // Its processes, from the cgroup itself (the ring buffer only has what happened since).
    if (auto procs = ReadFile(t->cgroup_path + "/cgroup.procs"); procs.ok()) {
      for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
        uint32_t pid = 0;
        if (!absl::SimpleAtoi(line, &pid)) continue;
        auto start = actions::ProcessStartNs(pid);
        if (!start.ok()) continue;
        bool created = false;
        if (identity::ProcessInfo* pi = procs_.Upsert(pid, *start, &created); pi && created) {
          pi->cgroup_id = t->cgroup_id;
          char exe[4096];
          ssize_t n = readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), exe, sizeof(exe) - 1);
          if (n > 0) pi->exe.assign(exe, n);
          t->live_processes++;
        }
      }
    }
    t->state = TaskState::kRunning;
    v1::Event e;
    InitSynthetic(&e, "task_start");
    FillAgent(*t, &e);
    e.mutable_task()->set_cgroup(t->cgroup_path);
    e.mutable_task()->set_reason("restored");
    if (t->deadline != absl::InfiniteFuture()) e.mutable_task()->set_deadline(Rfc3339(t->deadline));
    Emit(e);
    Log()->info("task {} restored ({} processes)", t->id, t->live_processes.load());
  }
  approvals_.Restore([this](const std::string& id) { return registry_.Find(id) != nullptr; });
}

// The guardian (see main.cc) is writd's own binary re-executed (a fork of this multithreaded process
// could only call async-signal-safe functions); it is in no task cgroup and inherits the link fds.
// A previous writd's guardian is dismissed only now, after this writd's links are attached: the
// programs never detach across a restart.
void Daemon::StartGuardian() {
  const std::string pidfile = cfg_.run_dir + "/guardian.pid";
  if (auto old = ReadFile(pidfile); old.ok()) {
    int pid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*old), &pid) && pid > 1) {
      // Only if it really is a writd guardian (pid files outlive processes).
      auto cmd = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
      if (cmd.ok() && cmd->find("--guardian") != std::string::npos) {
        kill(pid, SIGTERM);
        Log()->info("previous guardian {} released its links", pid);
      }
    }
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    Log()->error("guardian: cannot find my own binary; enforcement ends if writd dies");
    return;
  }
  self[n] = '\0';
  std::string parent = std::to_string(getpid());
  std::string root = cgroups_->root();
  std::string marker = GuardianMarker();
  std::string policy = cfg_.on_daemon_loss;
  std::vector<int> fds = loader_->LinkFds();
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    for (int fd : fds) fcntl(fd, F_SETFD, 0);  // async-signal-safe: the guardian inherits the links
    execl(self, self, "--guardian", parent.c_str(), root.c_str(), marker.c_str(), policy.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid < 0) {
    Log()->error("guardian: fork: {}", strerror(errno));
    return;
  }
  guardian_pid_ = pid;
  (void)WriteFileCreate(pidfile, std::to_string(pid));
  Log()->info("guardian {} holds {} links (on_daemon_loss: {})", pid, fds.size(), policy);
}

// Tasks the guardian (or a clean stop) froze while writd was away: thaw those re-adopted.
void Daemon::ThawAfterDaemonLoss() {
  auto marker = ReadFile(GuardianMarker());
  if (!marker.ok()) return;
  for (absl::string_view id : absl::StrSplit(*marker, '\n', absl::SkipEmpty())) {
    std::shared_ptr<Task> t = registry_.Find(std::string(id));
    if (!t) continue;
    FreezeTask(*t, false, nullptr, "writd is back (on_daemon_loss: freeze)");
  }
  unlink(GuardianMarker().c_str());
}

absl::Status Daemon::InstallKernelTables(const Task& task, const intent::KernelTables& kt) {
  if (kt.exec_judged) {
    // Exact paths the kernel can decide; an exe with an approval rule or a glob is stopped (SIGSTOP)
    // in enforce mode until userspace has judged its argv.
    for (const auto& p : kt.exec_allow_exact) {
      RETURN_IF_ERROR(loader_->SetExecVerdict(task.slot, bpf::PathHash(p), WRIT_KV_ALLOW));
    }
    for (const auto& p : kt.exec_deny_exact) {
      RETURN_IF_ERROR(loader_->SetExecVerdict(task.slot, bpf::PathHash(p), WRIT_KV_DENY));
    }
  }
  // Approval rules apply whether or not the intent has an exec: category.
  for (const auto& p : kt.exec_approval_exact) {
    RETURN_IF_ERROR(loader_->SetExecVerdict(task.slot, bpf::PathHash(p), WRIT_KV_APPROVAL));
  }
  for (const auto& p : kt.file_deny_exact) {
    RETURN_IF_ERROR(loader_->SetFileDeny(task.slot, bpf::PathHash(p)));
  }
  for (const auto& p : kt.file_deny_prefix) {
    RETURN_IF_ERROR(loader_->SetFileDeny(task.slot, bpf::PathHash(p)));
  }
  for (const auto& [dev, ino] : kt.file_deny_ids) {
    RETURN_IF_ERROR(loader_->SetFileDeny(task.slot, writ_file_id_hash(dev, ino), WRIT_PK_INODE));
  }
  for (const auto& name : kt.file_deny_leaf) {
    RETURN_IF_ERROR(loader_->SetFileDeny(task.slot, bpf::ComponentHash(name), WRIT_PK_LEAF));
  }
  // "**/NAME/**" also matches the directory NAME itself: the name as the opened file's own component too.
  for (const auto& name : kt.file_deny_any_component) {
    RETURN_IF_ERROR(loader_->SetFileDeny(task.slot, bpf::ComponentHash(name), WRIT_PK_DIR));
    RETURN_IF_ERROR(loader_->SetFileDeny(task.slot, bpf::ComponentHash(name), WRIT_PK_LEAF));
  }
  if (kt.net_judged) {
    // LPM returns only the longest matching prefix, so each prefix's entry carries the ranges of
    // every rule whose prefix contains it: deny ranges first, then allow, first match wins.
    auto contains = [](const intent::KernelNetRule& outer, const intent::KernelNetRule& inner) {
      if (outer.family != inner.family || outer.prefix_len > inner.prefix_len) return false;
      int full = outer.prefix_len / 8, rem = outer.prefix_len % 8;
      if (memcmp(outer.addr, inner.addr, full) != 0) return false;
      if (rem == 0) return true;
      uint8_t mask = static_cast<uint8_t>(0xff << (8 - rem));
      return (outer.addr[full] & mask) == (inner.addr[full] & mask);
    };
    for (const auto& key_rule : kt.net_rules) {
      writ_net_value val{};
      bool overflow = false;
      for (int pass = 0; pass < 2; pass++) {
        for (const auto& r : kt.net_rules) {
          if (r.deny != (pass == 0) || !contains(r, key_rule)) continue;
          if (val.nranges >= WRIT_NET_RANGES) {
            overflow = true;
            continue;
          }
          val.ranges[val.nranges++] = {r.port_lo, r.port_hi, r.deny ? WRIT_KV_DENY : WRIT_KV_ALLOW};
        }
      }
      if (overflow) {
        // More ranges than the kernel entry holds: hand the whole prefix to userspace.
        val.nranges = 1;
        val.ranges[0] = {0, 65535, WRIT_KV_USER};
      }
      if (key_rule.family == AF_INET) {
        writ_net4_key k{};
        k.prefixlen = 32 + key_rule.prefix_len;
        k.slot_be = htonl(task.slot);
        memcpy(k.addr, key_rule.addr, 4);
        RETURN_IF_ERROR(loader_->SetNet4(k, val));
      } else {
        writ_net6_key k{};
        k.prefixlen = 32 + key_rule.prefix_len;
        k.slot_be = htonl(task.slot);
        memcpy(k.addr, key_rule.addr, 16);
        RETURN_IF_ERROR(loader_->SetNet6(k, val));
      }
    }
  }
  return absl::OkStatus();
}

v1::Response Daemon::TaskStarted(const api::PeerCred& peer, const v1::TaskStartedRequest& req) {
  std::shared_ptr<Task> t = registry_.Find(req.task_id());
  if (!t) return Error(absl::NotFoundError(absl::StrCat("no task ", req.task_id())));
  if (req.place() && req.started()) {
    // The launcher's child waits on a pipe until this returns. Only the launcher's own child of a task
    // that has not started yet is moved: no client can use this to pull another process into a task.
    if (t->state.load() != TaskState::kPending) {
      return Error(absl::FailedPreconditionError(absl::StrCat("task ", t->id, " already started")));
    }
    auto stat = ReadFile(absl::StrCat("/proc/", req.pid(), "/stat"));
    uint32_t ppid = 0;
    if (stat.ok()) {
      size_t rp = stat->rfind(')');
      std::vector<absl::string_view> f =
          absl::StrSplit(absl::string_view(*stat).substr(rp == std::string::npos ? 0 : rp + 2), ' ');
      if (f.size() > 1) (void)absl::SimpleAtoi(f[1], &ppid);
    }
    if (ppid == 0 || ppid != static_cast<uint32_t>(peer.pid)) {
      return Error(absl::PermissionDeniedError(
          absl::StrCat("pid ", req.pid(), " is not the caller's child")));
    }
    absl::Status st = WriteFile(t->cgroup_path + "/cgroup.procs", std::to_string(req.pid()));
    if (!st.ok()) {
      return Error(absl::Status(st.code(), absl::StrCat("place pid ", req.pid(), " in task ", t->id,
                                                        ": ", st.message())));
    }
  }
  if (!req.started()) {
    // The launcher could not start the command: the task ends now (cgroup, map slot and registry
    // entry removed by EndTask, on the pipeline thread).
    Log()->info("task {} aborted: {}", t->id, req.error());
    t->SetAbortReason(req.error().empty() ? "launcher failed" : req.error());
    t->state = TaskState::kRunning;  // housekeeping ends it as soon as its cgroup is empty
    return v1::Response();
  }
  if (creds_.on_task_start) {
    // A required credential that cannot be issued fails the start: the launcher does not run the
    // command and aborts the task (which revokes whatever was issued).
    if (absl::Status st = creds_.on_task_start(*t, peer); !st.ok()) {
      Log()->warn("task {}: start refused: {}", t->id, std::string(st.message()));
      return Error(st);
    }
  }
  t->state = TaskState::kRunning;
  v1::Response resp;
  if (req.place()) {
    // What the launcher's seccomp filter must refuse to signal or trace (self-protection).
    v1::PlacedResponse* p = resp.mutable_placed();
    for (uint32_t pid : ProtectedPids()) p->add_protected_pids(pid);
    for (uint32_t g : ProtectedGroups()) p->add_protected_groups(g);
  }
  return resp;
}

v1::Response Daemon::Status() {
  v1::Response resp;
  v1::StatusResponse* s = resp.mutable_status();
  s->set_version(kVersion);
  s->set_mode(cfg_.mode);
  for (const auto& h : loader_->hooks()) {
    v1::HookState* hs = s->add_hooks();
    hs->set_name(h.name);
    hs->set_active(h.active);
    hs->set_detail(h.detail);
  }
  auto rung = [s](const char* name, bool active, const char* detail) {
    v1::HookState* hs = s->add_enforcement();
    hs->set_name(name);
    hs->set_active(active);
    hs->set_detail(detail);
  };
  rung("lsm: BPF-LSM refuses exec/open/connect with EPERM", loader_->lsm_active(),
       loader_->lsm_detail().c_str());
  rung("exec: kernel-signal (sched_process_exec + bpf_send_signal)", loader_->hooks()[0].active, "");
  rung("connect: cgroup-bpf (cgroup/connect4|6 EPERM)",
       loader_->hooks().size() > 14 && loader_->hooks()[13].active, "");
  rung("open: kernel-signal at syscall exit (killed_after)", loader_->hooks()[4].active, "");
  rung("userspace: cgroup.kill / pidfd_send_signal", true, "");
  bpf::Counters c = loader_->ReadCounters();
  for (uint16_t k = 1; k < WRIT_EV_KIND_MAX; k++) {
    (*s->mutable_events_by_kind())[decode::KindName(k)] = events_by_kind_[k].load();
    (*s->mutable_drops_by_kind())[decode::KindName(k)] = c.dropped[k];
  }
  s->set_userspace_drops(decode_errors_.load() + tail_drops_.load());
  (*s->mutable_counters())["unattributed"] = unattributed_.load();
  (*s->mutable_counters())["decode_errors"] = decode_errors_.load();
  (*s->mutable_counters())["tail_drops"] = tail_drops_.load();
  (*s->mutable_counters())["violations"] = violations_.load();
  (*s->mutable_counters())["actions"] = actions_.load();
  AdoptCounters(s);
  if (cred_service_) {
    auto depth = cred_service_->OutboxDepth();
    (*s->mutable_counters())["revocation_outbox_depth"] = depth.ok() ? *depth : ~0ull;
  }
  if (journal_) {
    journal::JournalStats js = journal_->stats();
    (*s->mutable_counters())["journal_records"] = js.records;
    (*s->mutable_counters())["journal_fsyncs"] = js.fsyncs;
    (*s->mutable_counters())["journal_errors"] = js.write_errors + js.fsync_errors;
  }
  // What ended tasks must not leave behind (the load test checks these return to their idle values).
  (*s->mutable_counters())["process_table_entries"] = procs_entries_.load();
  for (const auto& m : loader_->CountMapEntries()) {
    (*s->mutable_counters())[absl::StrCat("map_", m.name, "_entries")] = m.entries;
  }
  {
    absl::MutexLock lock(&out_mu_);
    for (size_t i = 0; i < sinks_->size(); i++) {
      sinks::SinkStats st = sinks_->stats(i);
      (*s->mutable_counters())["sink_" + sinks_->name(i) + "_delivered"] = st.delivered;
      (*s->mutable_counters())["sink_" + sinks_->name(i) + "_dropped"] = st.dropped();
    }
  }
  for (const auto& t : registry_.All()) {
    v1::TaskSummary* ts = s->add_tasks();
    ts->set_task_id(t->id);
    ts->set_spiffe_id(t->spiffe_id);
    ts->set_principal(t->principal);
    ts->set_intent(t->intent);
    ts->set_state(t->frozen ? "frozen" : StateName(t->state.load()));
    ts->set_mode(t->mode);
    if (t->deadline != absl::InfiniteFuture()) ts->set_deadline(Rfc3339(t->deadline));
    ts->set_processes(std::max(0, t->live_processes.load()));
  }
  {
    absl::MutexLock lock(&policy_mu_);
    s->set_policy_error(policy_error_);
    s->set_intents_loaded(policies_->intents().size());
  }
  s->set_approvals_pending(approvals_.size());
  return resp;
}

void Daemon::Tail(int fd, const v1::TailRequest& req) {
  auto sub = std::make_shared<Subscriber>();
  sub->filter = req;
  {
    absl::MutexLock lock(&out_mu_);
    subscribers_.push_back(sub);
  }
  (void)api::WriteFrame(fd, v1::Response());  // accepted
  for (;;) {
    std::deque<std::string> batch;
    {
      absl::MutexLock l(&sub->mu);
      while (sub->frames.empty() && !sub->closed && !stop_.load()) {
        sub->cv.WaitWithTimeout(&sub->mu, absl::Milliseconds(200));
        // Detect a client that went away while idle.
        char b;
        if (::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0) sub->closed = true;
      }
      if (sub->closed || stop_.load()) break;
      batch.swap(sub->frames);
    }
    for (const std::string& f : batch) {
      if (!api::WriteFrameBytes(fd, f).ok()) {
        absl::MutexLock l(&sub->mu);
        sub->closed = true;
        return;
      }
    }
  }
  absl::MutexLock l(&sub->mu);
  sub->closed = true;
}

v1::Response Daemon::TaskAction(const api::PeerCred& peer, const v1::Request& req) {
  const v1::TaskRequest& tr = req.has_kill_task()     ? req.kill_task()
                              : req.has_freeze_task() ? req.freeze_task()
                              : req.has_thaw_task()   ? req.thaw_task()
                                                      : req.revoke_task();
  if (PeerIsInTask(peer)) {
    return Error(absl::PermissionDeniedError("a process inside a task cannot control tasks"));
  }
  std::shared_ptr<Task> t = registry_.Find(tr.task_id());
  if (!t) return Error(absl::NotFoundError(absl::StrCat("no task ", tr.task_id())));
  std::string reason = tr.reason().empty() ? absl::StrCat("by uid ", peer.uid) : tr.reason();
  bool ok = true;
  if (req.has_kill_task()) {
    ok = KillTask(*t, nullptr, reason);
  } else if (req.has_freeze_task()) {
    ok = FreezeTask(*t, true, nullptr, reason);
  } else if (req.has_thaw_task()) {
    ok = FreezeTask(*t, false, nullptr, reason);
  } else {
    RevokeTask(*t, 0, reason);
    EndChildren(*t, "parent_revoked", "parent task " + t->id + " revoked: " + reason);
  }
  if (!ok) return Error(absl::InternalError("action failed; see writd's log"));
  return v1::Response();
}

v1::Response Daemon::Decide(const api::PeerCred& peer, const v1::ApprovalDecision& d) {
  // An agent must never approve itself: refuse any caller inside a task cgroup.
  if (PeerIsInTask(peer)) {
    return Error(absl::PermissionDeniedError(
        "approvals cannot come from a process inside a task: ask a human outside it"));
  }
  std::optional<ApprovalRequest> r = approvals_.Take(d.id());
  if (!r) {
    return Error(absl::NotFoundError(absl::StrCat("no pending approval ", d.id(),
                                                  " (unknown, decided or expired)")));
  }
  std::shared_ptr<Task> t = registry_.Find(r->task_id);
  if (!t) return Error(absl::NotFoundError(absl::StrCat("task ", r->task_id, " has ended")));
  std::string who = absl::StrCat("uid ", peer.uid);
  if (struct passwd* pw = getpwuid(peer.uid)) who = absl::StrCat(pw->pw_name, " (uid ", peer.uid, ")");
  v1::Event a = ActionEvent(*t, d.approve() ? "approve" : "deny", "ok", r->cause.ktime_ns(), r->id,
                            d.reason());
  v1::Approval* ap = a.mutable_approval();
  ap->set_id(r->id);
  ap->set_action(r->action);
  ap->set_action_hash(r->action_hash);
  ap->set_decided_by(who);
  ap->set_scope(d.scope().empty() ? "once" : d.scope());
  ap->set_reason(d.reason());
  Emit(a);
  if (d.approve()) {
    if (d.scope() == "task") approvals_.Grant(t->id, r->action_hash);
    if (r->kind == "connect") {
      // The kernel refused the connect (EPERM); from now on it allows exactly this destination.
      writ_grant_key g{};
      g.slot = t->slot;
      g.port = static_cast<uint16_t>(r->cause.network().dst_port());
      bool v6 = r->cause.network().family() == "inet6";
      g.family = v6 ? AF_INET6 : AF_INET;
      inet_pton(g.family, r->cause.network().dst_ip().c_str(), g.addr);
      (void)loader_->GrantConnect(g);
      approvals_.Grant(t->id, r->action_hash);
    }
    if (r->kind == "exec") (void)actions::SignalProcess(r->pid, r->start_ns, SIGCONT);
    FreezeTask(*t, false, &r->cause, "approved by " + who);
  } else {
    (void)actions::SignalProcess(r->pid, r->start_ns, SIGKILL);
    FreezeTask(*t, false, &r->cause, "denied by " + who);
    RunResponses(*t, r->cause, r->responses, "approval denied by " + who + ": " + r->action);
  }
  return v1::Response();
}

}  // namespace writ::daemon
