#include "daemon/daemon.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bpf/path_hash.h"
#include "bpf/task_tables.h"
#include "creds/redact.h"
#include "daemon/events.h"
#include "daemon/metrics.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskState;

namespace {

constexpr char kVersion[] = "0.1.0";

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("writd");
  return l;
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

std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

}  // namespace

Daemon::Daemon(Config cfg)
    : cfg_(std::move(cfg)),
      // LoadConfig and main validated it; a bad mode fails Start's preflight.
      mode_(identity::ParseTaskMode(cfg_.mode).value_or(identity::TaskMode::kMonitor)),
      boot_tag_(BootTag()),
      boot_to_unix_ns_(BootToUnixOffsetNs()),
      output_(HostName(), boot_tag_),
      policies_(cfg_.policies_dir,
                [this](const intent::PolicySet& set) { return CheckIntentCredentials(set); }),
      registry_(WRIT_MAX_TASKS),
      procs_(1 << 16) {}

Daemon::~Daemon() {
  if (console_) console_->Stop();
  if (server_) server_->Stop();
  if (cred_service_) cred_service_->Stop();
}

absl::Status Daemon::OpenOutput() {
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
      ASSIGN_OR_RETURN(sinks::SinkConfig sc, sinks::ParseSinkConfig(cfg_.sinks[i], cfg_.config_file,
                                                                    static_cast<int>(i)));
      sc.thread_nice = cfg_.pipeline_nice;
      ASSIGN_OR_RETURN(auto sink, sinks::MakeSink(sc));
      entries.push_back({std::move(sink), sc.format, sc.name});
    }
  }
  std::unique_ptr<journal::Journal> journal;
  if (cfg_.journal != "off") {
    journal::JournalOptions jo;
    jo.path = cfg_.journal.empty() ? cfg_.state_dir + "/journal.jsonl" : cfg_.journal;
    ASSIGN_OR_RETURN(jo.fsync, journal::ParseFsyncPolicy(cfg_.journal_fsync));
    ASSIGN_OR_RETURN(journal, journal::Journal::Open(jo));
  }
  output_.Start(std::make_unique<sinks::SinkSet>(std::move(entries)), std::move(journal));
  return absl::OkStatus();
}

absl::Status Daemon::Start() {
  if (cfg_.fleet.enabled) {
    // Never waits for NATS: with every server down writd starts and enforces, the link retries.
    ASSIGN_OR_RETURN(fleet_, fleet::Link::Open(cfg_.fleet.link));
  }
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
  // Policies first: a daemon with a broken policy directory does not start. A signed bundle put in
  // force earlier is verified again and read instead of the directory.
  ASSIGN_OR_RETURN(std::vector<intent::BundleKey> bundle_keys,
                   intent::LoadBundleKeys(cfg_.bundle_keys));
  bundles_ = std::make_unique<PolicyBundles>(cfg_.state_dir, std::move(bundle_keys), policies_);
  RETURN_IF_ERROR(bundles_->Restore());
  RETURN_IF_ERROR(policies_.Load());

  for (const std::string& dir : {cfg_.state_dir, cfg_.run_dir}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("create ", dir, ": ", ec.message()));
    // The run dir is traversable (0711, not listable) so tasks of other uids reach workload.sock
    // (0666, attestation decides) and their own credentials/<task>/ (0500, theirs); writd.sock is
    // 0600, or 0660 root:<control.group>.
    chmod(dir.c_str(), dir == cfg_.run_dir ? 0711 : 0700);
  }
  // Secret redaction, before anything can be emitted: a bad rules file or key file stops the start.
  {
    ASSIGN_OR_RETURN(creds::RedactionRuleSet rules,
                     creds::LoadRedactionRules(cfg_.redaction_rules));
    const std::string key_path =
        cfg_.redaction_key.empty() ? cfg_.state_dir + "/redaction.key" : cfg_.redaction_key;
    ASSIGN_OR_RETURN(std::string key, creds::LoadOrCreateRedactionKey(key_path));
    ASSIGN_OR_RETURN(redactor_, creds::Redactor::Create(rules, key));
    output_.SetRedactor(redactor_.get());
    Log()->info("redaction: {} rules ({}), key {}", redactor_->rule_count(),
                cfg_.redaction_rules.empty() ? "built in" : "built in + " + cfg_.redaction_rules,
                key_path);
  }
  ASSIGN_OR_RETURN(identity::CgroupManager cgm,
                   identity::CgroupManager::Create(cg2, cfg_.cgroup_subtree));
  cgroups_.emplace(std::move(cgm));
  RETURN_IF_ERROR(OpenOutput());
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
  lc.lsm = cfg_.bpf_lsm != "off";
  if (cfg_.dns) {
    ASSIGN_OR_RETURN(dns_, DnsEgress::Start(cfg_, DnsEgress::Deps{registry_, output_}));
    lc.dns_port = dns_->port();
    lc.dns_addr4 = dns_->addr4();
    std::memcpy(lc.dns_addr6, dns_->addr6(), sizeof(lc.dns_addr6));
  }
  if (!cfg_.console.empty()) {
    // Bound before the loader, which tells the kernel its port (tasks' packets to it are recorded);
    // it answers 503 until the control service exists.
    Console::Options co;
    co.listen = cfg_.console;
    co.url = cfg_.console_url;
    co.tls_cert = cfg_.console_tls_cert;
    co.tls_key = cfg_.console_tls_key;
    co.session_ttl = cfg_.console_session_ttl;
    co.login_ttl = cfg_.console_login_ttl;
    co.webhook = cfg_.console_webhook;
    co.webhook_ca = cfg_.console_webhook_ca;
    co.notify_violations = cfg_.console_notify_violations;
    ASSIGN_OR_RETURN(console_,
                     Console::Create(Console::Deps{registry_, approvals_,
                                                   [this](const sockaddr_storage& peer) {
                                                     return loader_->TakeConsolePeer(peer);
                                                   }},
                                     std::move(co)));
    RETURN_IF_ERROR(console_->Start());
    lc.console_port = console_->port();
    output_.SetObserver(console_.get());
  }
  if (cfg_.bpf_pin_dir != "none") {
    lc.pin_dir = cfg_.bpf_pin_dir.empty() ? "/sys/fs/bpf/" + cfg_.cgroup_subtree : cfg_.bpf_pin_dir;
  }
  // The handler runs only from Poll and Drain, after the pipeline below exists.
  ASSIGN_OR_RETURN(loader_, bpf::Loader::Open(lc, [this](const void* d, size_t n) {
                     pipeline_->OnRecord(d, n);
                   }));
  output_.SetRung(loader_->lsm_active() ? "lsm" : "tracepoint");
  for (const auto& h : loader_->hooks()) {
    if (h.active) {
      Log()->info("hook {}: active", h.name);
    } else {
      Log()->warn("hook {}: {}", h.name, h.detail);
    }
  }

  tool_calls_ = std::make_unique<ToolCalls>(
      ToolCalls::Deps{registry_, approvals_, output_, &output_.redactor()});
  lifecycle_ =
      std::make_unique<TaskLifecycle>(TaskLifecycle::Deps{*cgroups_, *loader_, registry_, procs_,
                                                          approvals_, output_, store_.get()},
                                      TaskCredentialHooks());
  pipeline_ = std::make_unique<Pipeline>(
      Pipeline::Deps{registry_, procs_, approvals_, *lifecycle_, output_, output_.redactor()},
      boot_to_unix_ns_, boot_tag_);
  lifecycle_->set_tool_calls(tool_calls_.get());
  pipeline_->set_tool_calls(tool_calls_.get());
  if (dns_) {
    dns_->SetLoader(loader_.get());
    lifecycle_->set_dns(dns_.get());
    pipeline_->set_dns(dns_.get());
  }
  {
    // writd's own sockets are reachable from every task: writd authorizes each request on them.
    std::vector<std::string> own = {cfg_.run_dir + "/writd.sock", cfg_.run_dir + "/workload.sock"};
    for (const std::string& s : own) {
      RETURN_IF_ERROR(loader_->SetUnixVerdict(WRIT_SLOT_ALL, WRIT_UK_EXACT, bpf::UnixNameHash(s),
                                              WRIT_KV_ALLOW));
    }
    pipeline_->set_own_sockets(std::move(own));
    // The dynamic loader run as a program is judged by the program it loads.
    std::vector<std::pair<uint32_t, uint64_t>> ids;
    std::string names;
    for (const bpf::DynamicLoader& d : bpf::HostDynamicLoaders()) {
      ids.emplace_back(d.dev, d.ino);
      absl::StrAppend(&names, names.empty() ? "" : ", ", d.path);
    }
    RETURN_IF_ERROR(loader_->SetDynamicLoaders(ids));
    Log()->info("dynamic loaders judged by the program they load: {}",
                names.empty() ? "none found" : names);
  }
  adoption_ = std::make_unique<Adoption>(Adoption::Deps{*loader_, policies_, *lifecycle_, output_},
                                         Adoption::Options{cfg_.cgroup_subtree, mode_});
  pipeline_->set_adopt_handler(
      [this](const void* d, size_t n) { return adoption_->OnCandidate(d, n); });
  guardian_ = std::make_unique<Guardian>(
      Guardian::Options{cfg_.run_dir, cfg_.state_dir, cfg_.on_daemon_loss});

  lifecycle_->Restore();
  guardian_->ThawAfterDaemonLoss(registry_, *lifecycle_);
  guardian_->Start(*loader_, *cgroups_);
  adoption_->Sync();  // workloads: the kernel pre-filter for agents writ did not launch
  guardian_->ArmSelfProtection(*loader_);

  ControlService::Hooks hooks;
  hooks.status = [this](v1::StatusResponse* s) { FillStatus(Sources(), s); };
  hooks.tail = [this](int fd, const v1::TailRequest& r,
                      std::function<bool(const v1::Event&)> visible) {
    output_.Tail(fd, r, std::move(visible));
  };
  hooks.protect = [this](v1::PlacedResponse* p) {
    guardian_->Protected(p);
    p->set_kernel_guards_self(loader_->lsm_active());
  };
  hooks.credentials_dir = [this](const Task& t) -> std::string {
    if (!task_creds_ || !t.compiled || t.compiled->credentials().empty()) return "";
    return task_creds_->DirFor(t.id);
  };
  if (console_) {
    hooks.console_login = [this](const std::string& who) { return console_->NewLogin(who); };
  }
  hooks.apply_bundle = [this](const std::string& envelope, const std::string& who) {
    return bundles_->Apply(envelope, who);
  };
  ControlService::Options copts;
  copts.cgroup_subtree = cfg_.cgroup_subtree;
  copts.mode = mode_;
  copts.admin_gid = cfg_.admin_gid;
  copts.workload_socket = "unix://" + cfg_.run_dir + "/workload.sock";
  control_ = std::make_unique<ControlService>(
      ControlService::Deps{registry_, policies_, approvals_, *lifecycle_, output_,
                           tool_calls_.get()},
      std::move(hooks), std::move(copts));
  ASSIGN_OR_RETURN(server_, api::Server::Start(
                                cfg_.run_dir + "/writd.sock",
                                [this](const api::Peer& p, int fd, const v1::Request& r) {
                                  control_->Handle(p, fd, r);
                                },
                                cfg_.control_gid));
  server_view_.store(server_.get(), std::memory_order_release);
  if (console_) console_->SetControl(control_.get());
  // The HTTP server's threads run from StartCredentials on, but /metrics reads what was set since:
  // the route exists only once Start has nothing left to set (before, a scrape gets 404).
  // AddRoute's lock orders these writes before every request's read.
  if (http::Server* h = cred_service_->http_server()) {
    h->AddRoute("GET", "/metrics", [this](const http::Request&) {
      http::Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = RenderMetrics(Sources());
      return r;
    });
  }
  Log()->info("writd {} started: mode {}, {} intents from {}, cgroups under {}, socket {}",
              kVersion, cfg_.mode, policies_.Get()->intents().size(), cfg_.policies_dir,
              cgroups_->root(), cfg_.run_dir + "/writd.sock");
  return absl::OkStatus();
}

MetricsSources Daemon::Sources() const {
  MetricsSources m;
  m.version = kVersion;
  m.mode = cfg_.mode;
  m.loader = loader_.get();
  m.pipeline = pipeline_.get();
  m.output = &output_;
  m.lifecycle = lifecycle_.get();
  m.registry = &registry_;
  m.procs = &procs_;
  m.approvals = &approvals_;
  m.tool_calls = tool_calls_.get();
  m.dns = dns_.get();
  m.adoption = adoption_.get();
  m.policies = &policies_;
  m.creds = cred_service_.get();
  m.redactor = &output_.redactor();
  m.control = control_.get();
  m.console = console_.get();
  m.bundles = bundles_.get();
  m.fleet = fleet_.get();
  m.server = server_view_.load(std::memory_order_acquire);
  return m;
}

creds::TaskClaims Daemon::Claims(const Task& t) {
  creds::TaskClaims c;
  c.task_id = t.id;
  c.spiffe_id = t.spiffe_id;
  // chain = principal, delegating agents..., this agent: the credential's actors are all but the
  // last.
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
  cc.http_hosts = cfg_.http_hosts;
  cc.issuer = cfg_.http_issuer;
  cc.http_tls = {cfg_.http_tls_cert, cfg_.http_tls_key, cfg_.http_tls_client_ca};
  cc.http_client_auth = cfg_.http_client_auth;
  cc.http_client_ids = cfg_.http_client_ids;
  cc.providers = cfg_.credential_providers;
  cc.revocation_alert_after = cfg_.revocation_alert_after;
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
  task_creds_ = std::make_unique<TaskCredentials>(
      cred_service_.get(), cfg_.run_dir,
      [this](const creds::CredentialEvent& ce) { OnCredentialEvent(ce); });
  return absl::OkStatus();
}

void Daemon::OnCredentialEvent(const creds::CredentialEvent& ce) {
  v1::Event e = output_.NewEvent("credential");
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
  // Provider errors are ours, but a server's message could echo what it was given: Emit redacts it
  // (and the finding's reason below, which quotes it).
  if (!ce.detail.empty()) c->set_detail(ce.detail);
  if (ce.operation == "revoke_overdue") {
    // A credential outlived its task: the revocation has kept failing for revocation_alert_after.
    v1::Finding* f = e.mutable_finding();
    f->set_rule("writ/credentials.revoke_overdue");
    f->set_category("credential");
    f->set_reason(absl::StrCat("revocation at provider '", ce.provider, "' of task ", ce.task_id,
                               " still failing: ", c->detail()));
    for (const char* id : {"OWASP-NHI1", "OWASP-NHI7", "MAESTRO-L6", "NIST-AI-RMF-MANAGE-2.4"}) {
      f->add_frameworks(id);
    }
    f->add_responses("alert");
    f->set_severity("high");
  }
  output_.Emit(e);
}

// ---------------------------------------------------------------------------------------------------
// Pipeline thread

void Daemon::Run() {
  const int drain_ms = std::max<int>(1, absl::ToInt64Milliseconds(cfg_.drain_interval));
  // This thread only: the sinks, API and credential threads keep the default priority.
  if (cfg_.pipeline_nice != 0 &&
      setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), cfg_.pipeline_nice) != 0) {
    Log()->warn("pipeline_nice {}: {}; the pipeline runs at the default priority",
                cfg_.pipeline_nice, std::strerror(errno));
  }
  absl::Time next_housekeeping = absl::Now();
  while (!stop_.load()) {
    loader_->Poll(drain_ms);
    output_.Commit();  // the drained records go to the sinks as one batch
    if (policies_.ApplyReload()) adoption_->Sync();
    absl::Time now = absl::Now();
    if (now >= next_housekeeping) {
      adoption_->Heartbeat();
      Housekeeping();
      output_.Commit();
      next_housekeeping = now + cfg_.housekeeping_interval;
    }
  }
  Shutdown();
}

void Daemon::Housekeeping() {
  absl::Time now = absl::Now();
  // Processes the kernel killed because their record could not be delivered have no event of their
  // own (the record is what was lost): say so in the log, at most once a second, besides the
  // metric.
  if (now - fail_closed_checked_ >= absl::Seconds(1)) {
    fail_closed_checked_ = now;
    bpf::Counters c = loader_->ReadCounters();
    uint64_t total = 0;
    for (uint64_t n : c.fail_closed) total += n;
    if (total > fail_closed_logged_) {
      Log()->warn(
          "{} process(es) of enforce-mode tasks killed in the kernel: the ring buffer was full, "
          "so the exec/open writd had to judge could not reach it (fail closed; "
          "writ_kernel_fail_closed_kills_total)",
          total - fail_closed_logged_);
      fail_closed_logged_ = total;
    }
  }
  tool_calls_->Housekeeping();  // before approval expiry: a held call's expiry is answered there
  lifecycle_->Housekeeping();
}

// Clean shutdown: stop accepting, drain what the kernel holds, detach (or leave pinned for the
// tasks still running), flush the journal and the sinks.
void Daemon::Shutdown() {
  const absl::Time shutdown_start = absl::Now();
  auto since = [](absl::Time t) { return absl::ToInt64Milliseconds(absl::Now() - t); };
  if (console_) console_->Stop();  // no decision is taken while the parts it uses shut down
  adoption_->Stop();               // no exec is stopped for adoption once nobody would continue it
  output_.CloseTails();
  server_->Stop();
  loader_->Drain();
  bpf::Counters c = loader_->ReadCounters();
  uint64_t emitted = 0, dropped = 0;
  for (int k = 0; k < WRIT_EV_KIND_MAX; k++) {
    emitted += c.emitted[k];
    dropped += c.dropped[k];
  }
  const PipelineCounters& pc = pipeline_->counters();
  Log()->info(
      "shutdown: {} records emitted by the kernel, {} dropped in the kernel, {} decoded, "
      "{} decode errors, {} unattributed, {} tail drops, {} tasks still registered",
      emitted, dropped, pipeline_->decoder_stats().decoded, pc.decode_errors.load(),
      pc.unattributed.load(), output_.tail_drops(), registry_.size());
  guardian_->OnStop(registry_, *cgroups_);
  const int64_t guardian_ms = since(shutdown_start);
  const absl::Time creds_start = absl::Now();
  cred_service_->Stop();  // its HTTP thread serves /metrics, which reads the loader
  const int64_t creds_ms = since(creds_start);
  const absl::Time detach_start = absl::Now();
  if (registry_.size() == 0) {
    loader_->Unpin();                 // nothing to protect: leave nothing of writ in the kernel
    rmdir(cgroups_->root().c_str());  // the empty subtree too (fails harmlessly if not empty)
  } else {
    Log()->warn(
        "{} tasks still running: their in-kernel enforcement stays pinned and the next "
        "writd re-adopts them",
        registry_.size());
  }
  loader_.reset();
  const int64_t detach_ms = since(detach_start);
  const absl::Time sinks_start = absl::Now();
  // Every queued finding and action is in the journal before the sinks stop.
  output_.Stop(absl::Seconds(2));
  Log()->info(
      "shutdown took {} ms: drain and guardian {} ms, credentials {} ms, detach {} ms, sinks {} ms",
      since(shutdown_start), guardian_ms, creds_ms, detach_ms, since(sinks_start));
}

}  // namespace writ::daemon
