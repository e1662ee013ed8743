// Adoption of agents writ did not launch (policies' `kind: Workloads` entries).
//
// Kernel: sched_process_exec of a process in no task consults a pre-filter (exact exe path hashes,
// uids, or "every exec") and, for a candidate, emits a WRIT_EV_ADOPT record and stops the process
// before its first instruction (bpf/writ_adopt.bpf.h). Here, on the pipeline thread: read the
// process's facts (resolved exe, uid, cgroup path, systemd unit, exe sha256 on demand), run the
// workload selectors, and on a match create a task exactly as `writ run` would (slot, cgroup, BPF
// tables, registry, state store), move the process into the task cgroup, emit task_start with
// adopted: true, then continue it. Every path out of OnAdoptCandidate continues a stopped process:
// nothing is left stopped by a decision.
#include "daemon/adopt.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "actions/signal.h"
#include "bpf/path_hash.h"
#include "daemon/events.h"
#include "identity/cgroup.h"
#include "identity/spiffe_id.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::daemon {

using identity::Task;
using identity::TaskState;

namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto l = Logger("adopt");
  return l;
}

constexpr int64_t kMaxHashBytes = int64_t{1}
                                  << 30;  // an exe larger than 1 GiB never matches a sha256

// argv of a process from /proc/<pid>/cmdline, at most 16 arguments.
std::vector<std::string> Cmdline(pid_t pid) {
  std::vector<std::string> out;
  auto s = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!s.ok()) return out;
  for (absl::string_view a : absl::StrSplit(*s, '\0', absl::SkipEmpty())) {
    if (out.size() == 16) break;
    out.emplace_back(a.substr(0, 256));
  }
  return out;
}

}  // namespace

std::string Sha256OfFd(int fd, int64_t max_bytes) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size > max_bytes) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    return "";
  }
  char buf[1 << 16];
  int64_t total = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof(buf), total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || total + n > max_bytes) {
      EVP_MD_CTX_free(ctx);
      return "";
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf, static_cast<size_t>(n));
    total += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; i++) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

// Rebuilds the matcher and the kernel pre-filter from the current policy set (start and every
// reload).
void Adoption::Sync() {
  std::shared_ptr<const intent::PolicySet> set = d_.policies.Get();
  if (policies_ == set) return;  // unchanged (a failed reload keeps the old set)
  policies_ = std::move(set);
  auto m = intent::WorkloadMatcher::Build(policies_->workloads());
  if (!m.ok()) {  // the loader validated every selector: this is a broken invariant, say so loudly
    Log()->error("workloads: {}; adoption is off", std::string(m.status().message()));
    matcher_ = intent::WorkloadMatcher();
  } else {
    matcher_ = *std::move(m);
  }
  compiled_.clear();
  compile_errors_.clear();
  for (const v1::Workload& w : policies_->workloads()) {
    const v1::Intent* in = policies_->Find(w.intent());
    if (!in) continue;  // the loader refuses this; kept defensive
    absl::flat_hash_map<std::string, std::string> params(w.params().begin(), w.params().end());
    auto c = intent::Compile(*in, params);
    if (c.ok()) {
      compiled_[w.name()] = *c;
    } else {
      compile_errors_[w.name()] = std::string(c.status().message());
      Log()->error(
          "workload {}: intent {} does not compile ({}); matching processes are not adopted",
          w.name(), w.intent(), std::string(c.status().message()));
    }
  }
  intent::AdoptKernelKeys keys = matcher_.kernel_keys();
  std::vector<uint64_t> hashes;
  for (const std::string& p : keys.exe_paths) hashes.push_back(bpf::PathHash(p));
  uint32_t flags = 0;
  if (!keys.empty()) flags |= WRIT_ADOPT_ON;
  if (keys.any) flags |= WRIT_ADOPT_ANY;
  if (!hashes.empty()) flags |= WRIT_ADOPT_EXE;
  if (!keys.uids.empty()) flags |= WRIT_ADOPT_UID;
  if (absl::Status st = d_.loader.SetAdoptTables(flags, hashes, keys.uids); !st.ok()) {
    Log()->error("adoption pre-filter: {}; adoption is off", std::string(st.message()));
    (void)d_.loader.SetAdoptTables(0, {}, {});
    flags = 0;
  }
  kernel_flags_ = flags;
  if (flags) {
    Log()->info("adoption: {} workloads; kernel pre-filter: {} exe paths, {} uids{}",
                matcher_.size(), hashes.size(), keys.uids.size(),
                keys.any ? ", EVERY exec (a workload has neither unix:path nor unix:uid)" : "");
  }
  Heartbeat();
}

void Adoption::Heartbeat() {
  if (!kernel_flags_) return;
  (void)d_.loader.AdoptHeartbeat(static_cast<uint64_t>(NowBootNs()),
                                 static_cast<uint64_t>(absl::ToInt64Nanoseconds(timeout_)));
}

void Adoption::Stop() {
  if (kernel_flags_) (void)d_.loader.SetAdoptTables(0, {}, {});
}

std::string Adoption::Sha256Of(pid_t pid) {
  Fd fd(open(absl::StrCat("/proc/", pid, "/exe").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return "";
  auto key =
      std::make_tuple(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                      static_cast<int64_t>(st.st_size),
                      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  if (auto it = sha_cache_.find(key); it != sha_cache_.end()) return it->second;
  std::string out = Sha256OfFd(fd.get(), kMaxHashBytes);
  if (sha_cache_.size() >= 256) sha_cache_.clear();
  if (!out.empty()) sha_cache_[key] = out;
  return out;
}

bool Adoption::OnCandidate(const void* data, size_t size) {
  decode::AdoptRecord r;
  if (!decode::DecodeAdopt(data, size, &r).ok()) {
    // Unreadable, but its header may still name a process the kernel stopped: nothing stays
    // stopped.
    writ_event_hdr h;
    if (size >= sizeof(h)) {
      std::memcpy(&h, data, sizeof(h));
      if (h.flags & WRIT_F_KERNEL_STOP) {
        (void)actions::SignalProcess(static_cast<pid_t>(h.tgid), h.start_time_ns, SIGCONT);
      }
    }
    return false;
  }
  candidates_++;
  if (!r.stopped) unstopped_++;
  if (NowBootNs() - static_cast<int64_t>(r.ktime_ns) > absl::ToInt64Nanoseconds(timeout_)) late_++;
  const pid_t pid = static_cast<pid_t>(r.tgid);
  // Whatever is decided below, a process the kernel stopped is continued (after placement on a
  // match).
  auto resume = [&] {
    if (!r.stopped) return;
    (void)actions::SignalProcess(pid, r.start_time_ns, SIGCONT);
    // How long the kernel's stop lasted: exec (kernel timestamp) to SIGCONT sent.
    int64_t us = (NowBootNs() - static_cast<int64_t>(r.ktime_ns)) / 1000;
    stopped_us_total_ += us > 0 ? static_cast<uint64_t>(us) : 0;
    stops_++;
  };

  intent::ProcessFacts f;
  f.uid = r.uid;
  char exe[4096];
  ssize_t n = readlink(absl::StrCat("/proc/", pid, "/exe").c_str(), exe, sizeof(exe) - 1);
  auto start = actions::ProcessStartNs(pid);
  auto cg = identity::ProcessCgroup(pid);
  // /proc's start time has clock-tick resolution: the same process is within one tick of the
  // kernel's.
  static const uint64_t tick = 1000000000ull / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  const bool same = start.ok() && (*start > r.start_time_ns ? *start - r.start_time_ns
                                                            : r.start_time_ns - *start) <= tick;
  if (n <= 0 || !same || !cg.ok()) {
    gone_++;  // exited, or the pid is another process now (the pinned signal then hits nothing)
    resume();
    return true;
  }
  f.exe.assign(exe, n);
  f.cgroup_path = *cg;
  f.systemd_unit = intent::SystemdUnitOf(f.cgroup_path);
  // writd's own children (the guardian) and anything already under writd's subtree are never
  // adopted.
  if (r.ppid == static_cast<uint32_t>(getpid()) ||
      absl::StartsWith(f.cgroup_path, "/" + opts_.cgroup_subtree + "/")) {
    misses_++;
    resume();
    return true;
  }
  f.sha256 = [this, pid] { return Sha256Of(pid); };
  const v1::Workload* w = matcher_.Match(f);
  if (!w) {
    misses_++;
    resume();
    return true;
  }
  absl::Status st = Adopt(*w, r, f);
  if (!st.ok()) {
    // Rate-limited: a broken workload would otherwise log once per exec of its agent.
    uint64_t nfail = ++failed_;
    if (nfail <= 10 || nfail % 1000 == 0) {
      Log()->error("pid {} ({}) matches workload {} but was not adopted ({} failures so far): {}",
                   pid, f.exe, w->name(), nfail, std::string(st.message()));
    }
  } else {
    adopted_++;
  }
  resume();
  return true;
}

absl::Status Adoption::Adopt(const v1::Workload& w, const decode::AdoptRecord& r,
                             const intent::ProcessFacts& f) {
  auto ci = compiled_.find(w.name());
  if (ci == compiled_.end()) {
    auto e = compile_errors_.find(w.name());
    return absl::FailedPreconditionError(
        absl::StrCat("intent ", w.intent(), " does not compile: ",
                     e == compile_errors_.end() ? std::string("unknown intent") : e->second));
  }
  ASSIGN_OR_RETURN(identity::SpiffeId id, identity::ParseSpiffeId(w.spiffe_id()));
  auto task = std::make_shared<Task>();
  task->id = "t-" + RandomHex(6);
  task->spiffe_id = id.ToString();
  task->principal = w.principal();
  task->intent = w.intent();
  for (const auto& [k, v] : w.params()) task->params[k] = v;
  task->command = Cmdline(static_cast<pid_t>(r.tgid));
  task->owner_uid = r.uid;
  task->run_uid = r.uid;
  task->root = r.uid == 0;
  task->start = absl::Now();
  task->mode = opts_.mode;
  if (!task->principal.empty()) task->chain.push_back(task->principal);
  task->chain.push_back(task->spiffe_id);
  task->compiled = ci->second;
  if (!task->compiled->mode().empty())
    task->mode = *identity::ParseTaskMode(task->compiled->mode());
  if (task->compiled->ttl() != absl::InfiniteDuration()) {
    task->deadline = task->start + task->compiled->ttl();
  }

  // As CreateTask, and the process is moved into the new cgroup: nothing is left behind on failure.
  RETURN_IF_ERROR(
      d_.tasks.Install(task, policies_->Find(task->intent), static_cast<pid_t>(r.tgid)));
  v1::Event e = TaskStartEvent(d_.output, *task);
  e.mutable_task()->set_adopted(true);
  e.mutable_task()->set_workload(w.name());
  v1::Process* p = e.mutable_process();
  p->set_pid(r.tgid);
  p->set_ppid(r.ppid);
  p->set_uid(r.uid);
  p->set_gid(r.gid);
  p->set_comm(r.comm);
  p->set_exe(f.exe);
  p->set_start_time_ns(r.start_time_ns);
  d_.output.Emit(e);
  // An adopted agent has no launcher: its credential files are owned by its own uid. A required
  // credential that cannot be issued does not undo the adoption (the process already runs, and
  // enforcement is what matters); it is logged and reported as a credential event.
  api::PeerCred owner{static_cast<pid_t>(r.tgid), r.uid, r.gid};
  if (absl::Status st = d_.tasks.OnStarted(*task, owner); !st.ok()) {
    Log()->warn("adopted task {}: credentials not issued: {}", task->id, std::string(st.message()));
  }
  task->state = TaskState::kRunning;
  Log()->info("pid {} ({}) adopted by workload {}: task {} {} intent {} mode {}", r.tgid, f.exe,
              w.name(), task->id, task->spiffe_id, task->intent,
              identity::TaskModeName(task->mode));
  return absl::OkStatus();
}

void Adoption::AddCounters(v1::StatusResponse* s) const {
  auto& c = *s->mutable_counters();
  c["adopt_candidates"] = candidates_.load();
  c["adopt_adopted"] = adopted_.load();
  c["adopt_misses"] = misses_.load();
  c["adopt_failed"] = failed_.load();
  c["adopt_gone"] = gone_.load();
  c["adopt_late"] = late_.load();
  c["adopt_unstopped"] = unstopped_.load();
  c["adopt_stops"] = stops_.load();
  c["adopt_stopped_us_total"] = stopped_us_total_.load();
}

void Adoption::AppendMetrics(std::string* o) const {
  absl::StrAppend(o, "# HELP writ_adopt_candidates_total Adoption candidates by decision.\n",
                  "# TYPE writ_adopt_candidates_total counter\n");
  const std::pair<const char*, uint64_t> rows[] = {{"adopted", adopted_.load()},
                                                   {"miss", misses_.load()},
                                                   {"failed", failed_.load()},
                                                   {"gone", gone_.load()}};
  for (const auto& [name, v] : rows) {
    absl::StrAppend(o, "writ_adopt_candidates_total{decision=\"", name, "\"} ", v, "\n");
  }
}

}  // namespace writ::daemon
