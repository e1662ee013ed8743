// Owner of writ's BPF programs, maps, links and ring buffer (libbpf skeleton), and the kernel
// feature probes. Phases: open -> set rodata/map sizes -> load -> attach each program (each hook's
// result is kept for `writ status`). Destruction order is member order reversed: ring buffer,
// links, skeleton.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "bpf/ring.h"
#include "util/fd.h"
#include "writ/abi/events.h"

struct writ_bpf;
struct writ_lsm_bpf;
struct bpf_link;

namespace writ::bpf {

struct LoaderConfig {
  uint32_t ring_bytes = 4u << 20;    // power of two, >= page size
  uint32_t task_level = 0;           // cgroup level of task cgroups
  uint64_t wakeup_bytes = 1u << 20;  // force a wakeup above this much pending data
  // While a task with prompt verdicts (WRIT_TASK_PROMPT) exists, Poll spins this long for the next
  // record before it sleeps (RingReader::set_spin_ns; writd.yaml drain_spin).
  int64_t spin_ns = 20000;
  std::string cgroup_root;  // writ subtree: cgroup/connect* attach here
  // bpffs directory for pinned maps and links ("" = no pinning). With pins, in-kernel enforcement
  // outlives writd, and a restarted writd re-adopts the maps (tasks, tables, counters, ring
  // buffer).
  std::string pin_dir;
  // Kernel run-time accounting of BPF programs (BPF_ENABLE_STATS, held while the loader lives).
  // Host wide: every BPF program on the machine pays two clock reads per run while it is on.
  bool program_stats = false;
  // Probe and attach the BPF-LSM rung where the kernel allows it (writd.yaml bpf_lsm: auto). false
  // (bpf_lsm: off) keeps the tracepoint and cgroup rungs only: to compare the rungs on one kernel,
  // or where the host's LSM stack must not gain a BPF program.
  bool lsm = true;
  // DNS egress (#17): writd's stub resolver. Port 0: no stub; a task's DNS goes where it sends it.
  // Otherwise TCP and UDP to port 53 of any address are sent to dns_addr4:dns_port (and IPv6 to
  // dns_addr6, when set), and the cgroup programs that make that work are attached (HookId::kDns).
  uint16_t dns_port = 0;
  uint32_t dns_addr4 = 0;      // network byte order
  uint8_t dns_addr6[16] = {};  // all zero: no IPv6 stub
  // The approvals console's TCP port (0: none): cgroup_skb/egress records which task sends to it
  // (TakeConsolePeer), attached when this or dns_port is set.
  uint16_t console_port = 0;
};

// Who sent a packet to the stub, by the source the stub saw (Loader::LookupDnsPeer).
struct DnsPeer {
  uint64_t cgroup_id = 0;  // the task's cgroup
  int orig_family = 0;     // 0: sent to the stub directly, not redirected
  uint8_t orig_addr[16] = {};
  uint16_t orig_port = 0;
};

// What a hook is, so that status and the enforcement ladder name hooks by identity, never by their
// position in hooks(). Several programs may share an id (the four open syscalls, the
// self-protection syscalls).
enum class HookId : uint8_t {
  kExec,  // tp_btf/sched_process_exec: attribution and exec enforcement
  kFork,
  kExit,
  kOpenExit,  // syscalls/sys_exit_{openat,openat2,open,creat}
  kConnectEnter,
  kConnectExit,
  kCgroupConnect,  // cgroup/connect4|6: connect refused with EPERM
  kSelf,           // self-protection syscall tracepoints
  kLsm,            // the BPF-LSM object (one row for its programs)
  kCgroupSendmsg,  // cgroup/sendmsg4|6: a datagram to a denied address refused with EPERM
  kUnixConnect,    // syscalls/sys_{enter,exit}_connect for AF_UNIX: every unix connect reported
  kCgroupUnix,     // cgroup/connect_unix, cgroup/sendmsg_unix (6.7+): refused with EPERM
  kLink,           // syscalls/sys_enter_{rename,renameat,renameat2,link,linkat,symlink,symlinkat}
  kDns,            // cgroup/recvmsg4|6, getpeername4|6, cgroup_skb/egress: the DNS redirect
};

struct HookStatus {
  HookId id = HookId::kExec;
  std::string name;  // e.g. "exec (tp_btf/sched_process_exec)"
  bool active = false;
  std::string detail;  // why not, when inactive
};

// One rung of the enforcement ladder as `writ status` lists it (Loader::Rungs).
struct Rung {
  std::string name;  // "<hook>: <rung> (<how>)"
  bool active = false;
  std::string detail;  // why not, when inactive
};

// What the kernel offers beyond the hooks that attached (Loader probes it at load).
struct KernelFacts {
  bool lsm_active = false;
  std::string lsm_detail;     // "active", or why the LSM object did not load
  bool kill_lineage = true;   // bpf_task_from_pid + bpf_send_signal_task (6.13+)
  bool task_from_pid = true;  // bpf_task_from_pid (6.2+)
};

// The enforcement ladder as `writ status` shows it (Loader::Rungs): which rung enforces each hook,
// strongest first, active when the hooks it rests on are attached (by identity, never by position).
std::vector<Rung> EnforcementRungs(const std::vector<HookStatus>& hooks, const KernelFacts& k);

// True when every hook with this id is active (and there is at least one); *why says which is not.
bool HooksActive(const std::vector<HookStatus>& hooks, HookId id, std::string* why = nullptr);

struct Counters {
  uint64_t emitted[WRIT_EV_KIND_MAX] = {};
  uint64_t dropped[WRIT_EV_KIND_MAX] = {};
  // Of the dropped: judged records of enforce-mode tasks whose process the kernel killed (fail
  // closed).
  uint64_t fail_closed[WRIT_EV_KIND_MAX] = {};
  // Not emitted on purpose: refused datagram sends past their rate limit (bpf/writ_net.bpf.h).
  uint64_t suppressed[WRIT_EV_KIND_MAX] = {};
};

class Loader {
 public:
  // Record handler: called on the polling thread for every ring-buffer record.
  using Handler = std::function<void(const void* data, size_t size)>;

  static absl::StatusOr<std::unique_ptr<Loader>> Open(const LoaderConfig& cfg, Handler handler);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  absl::Status AddTask(uint64_t cgroup_id, const writ_task_info& info);
  absl::Status RemoveTask(uint64_t cgroup_id);

  // Self-protection: the processes tasks must not signal, trace or reach into
  // (bpf/writ_self.bpf.h).
  absl::Status SetProtectedPids(uint32_t writd, uint32_t guardian, uint32_t writd_pgid);

  // In-kernel tables of a task (enforcement).
  absl::Status SetExecVerdict(uint32_t slot, uint64_t path_hash, uint32_t verdict);
  // kind: WRIT_PK_PATH (path_hash = PathHash of an exact path or a denied directory), or
  // WRIT_PK_LEAF / WRIT_PK_DIR (path_hash = ComponentHash of a name; applied only with
  // WRIT_TASK_FILE_COMP).
  absl::Status SetFileDeny(uint32_t slot, uint64_t path_hash, uint32_t kind = WRIT_PK_PATH);
  absl::Status SetNet4(const writ_net4_key& key, const writ_net_value& value);
  absl::Status SetNet6(const writ_net6_key& key, const writ_net_value& value);
  absl::Status GrantConnect(const writ_grant_key& key);
  // Unix-socket table (bpf/writ_net.bpf.h): kind WRIT_UK_EXACT or WRIT_UK_PREFIX, hash UnixNameHash
  // of the name (or directory) as written, verdict WRIT_KV_ALLOW or WRIT_KV_DENY; slot
  // WRIT_SLOT_ALL for every task (writd's own sockets).
  absl::Status SetUnixVerdict(uint32_t slot, uint32_t kind, uint64_t hash, uint32_t verdict);
  // The host's dynamic loaders by identity (kernel device, inode): an exec of one is the loader run
  // as a program, judged by the program it loads (WRIT_F_LOADER). Replaces the previous set.
  absl::Status SetDynamicLoaders(const std::vector<std::pair<uint32_t, uint64_t>>& ids);
  // Removes every table entry of a slot.
  void ClearTables(uint32_t slot);

  // DNS egress pins (pin_map): `addr` (AF_INET: 4 bytes, AF_INET6: 16) is allowed to the task in
  // `slot` (of `generation`) on `ports` until expires_boot_ns. At most WRIT_PIN_RANGES ranges.
  // `name`: the name the task asked (kept with the pin for a restarted writd).
  absl::Status PinAddress(uint32_t slot, uint64_t generation, int family, const uint8_t* addr,
                          uint64_t expires_boot_ns,
                          const std::vector<std::pair<uint16_t, uint16_t>>& ports,
                          const std::string& name);
  void UnpinAddress(uint32_t slot, int family, const uint8_t* addr);
  struct PinEntry {
    int family = 0;
    uint8_t addr[16] = {};
    uint64_t expires_boot_ns = 0;
    uint64_t generation = 0;
    std::string name;
  };
  // The pins of a slot (a restarted writd takes up the pins its predecessor wrote).
  std::vector<PinEntry> ReadPins(uint32_t slot) const;
  // The task that sent to the stub from `src` (as the stub's recvfrom/accept saw it) over `proto`
  // (IPPROTO_UDP, IPPROTO_TCP); nullopt when no task did.
  std::optional<DnsPeer> LookupDnsPeer(int proto, const sockaddr_storage& src) const;
  // The task cgroup whose socket sent TCP to the console's port from `src` (as the console's accept
  // saw its peer), removing the record; nullopt when no task did.
  std::optional<uint64_t> TakeConsolePeer(const sockaddr_storage& src);

  // Drains what is pending; if nothing was, sleeps up to timeout_ms or until a prompt record (or a
  // large backlog) wakes it, then drains (RingReader::Poll: batched records never wake the poller,
  // and prompt ones only while it sleeps). Returns records consumed or a negative errno.
  int Poll(int timeout_ms);
  int Drain();

  Counters ReadCounters() const;

  struct ProgramStats {
    std::string name;
    uint64_t run_cnt = 0;
    uint64_t run_time_ns = 0;
  };
  // Per-program run count and time (kernel bpf_stats). Run time and count only advance while stats
  // are enabled: by this loader (LoaderConfig::program_stats) or by someone else (sysctl
  // kernel.bpf_stats_enabled).
  std::vector<ProgramStats> ReadProgramStats() const;
  bool program_stats() const { return stats_fd_.valid(); }
  struct MapEntries {
    std::string name;
    uint64_t entries = 0;
  };
  // Entries in every hash and LPM map (tasks, per-syscall arguments, decision tables): what a task
  // leaves behind after it ends shows up here. Counted by key iteration, bounded per map.
  std::vector<MapEntries> CountMapEntries() const;
  const std::vector<HookStatus>& hooks() const { return hooks_; }
  // Which rung enforces each hook (exec, open, connect, self), strongest first: the BPF-LSM rung
  // where it loaded, else the signal and cgroup rungs (docs/architecture.md, Kernel matrix). One
  // entry per hook, named "<hook>: <rung> (<how>)"; inactive with the reason when the hook has no
  // rung at all. The first entry is the LSM probe itself, with its reason when it did not load.
  std::vector<Rung> Rungs() const;
  // BPF-LSM rung: probed at start by loading the LSM object; active only where the kernel allows
  // it.
  bool lsm_active() const { return lsm_ != nullptr; }
  const std::string& lsm_detail() const { return lsm_detail_; }
  // True when the maps were re-adopted from pins left by a previous writd.
  bool adopted() const { return adopted_; }
  // Removes every pin: when writd stops with no task left, nothing of writ stays in the kernel.
  void Unpin();
  // The attachment links. A link lives while any process holds its fd (or a pin): writd hands these
  // to its guardian process so that enforcement outlives a crash even where pinning links is
  // refused.
  std::vector<int> LinkFds() const;
  uint32_t ring_bytes() const { return cfg_.ring_bytes; }

  // Adoption pre-filter (bpf/writ_adopt.bpf.h): replaces the exe-hash and uid keys and the flags
  // (WRIT_ADOPT_*). flags 0 turns adoption off. The heartbeat says writd's pipeline is alive: the
  // kernel stops a candidate only while the last heartbeat is at most stale_ns old.
  absl::Status SetAdoptTables(uint32_t flags, const std::vector<uint64_t>& exe_hashes,
                              const std::vector<uint32_t>& uids);
  absl::Status AdoptHeartbeat(uint64_t now_boot_ns, uint64_t stale_ns);

 private:
  Loader(const LoaderConfig& cfg, Handler handler);
  absl::Status LoadAndAttach();
  absl::Status Load();
  void PinLink(bpf_link* link, const char* prog_name);
  // Sets the expected attach types of the unix-socket cgroup programs from the kernel's BTF, or
  // turns them off (with the reason in unix_hooks_detail_) where the kernel has none (Linux < 6.7).
  void PrepareUnixHooks(bool disable, const std::string& why);

  struct SkelDeleter {
    void operator()(writ_bpf* s) const;
  };
  struct LinkDeleter {
    void operator()(bpf_link* l) const;
  };
  struct LsmDeleter {
    void operator()(writ_lsm_bpf* s) const;
  };
  void ProbeLsm();
  void UnpinUnused(const std::vector<std::string>& prog_names);

  LoaderConfig cfg_;
  Handler handler_;
  std::vector<HookStatus> hooks_;
  int ncpus_ = 1;
  // Member order is destruction order reversed: ring buffer first, then links, then the skeleton.
  std::unique_ptr<writ_bpf, SkelDeleter> skel_;
  std::unique_ptr<writ_lsm_bpf, LsmDeleter> lsm_;
  std::string lsm_detail_;
  bool lsm_links_ = false;  // the LSM object's path hooks load (CONFIG_SECURITY_PATH)
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> links_;
  std::unique_ptr<RingReader> ring_;
  Fd stats_fd_;  // BPF_ENABLE_STATS handle: run-time accounting while it is open
  bool adopted_ = false;
  bool link_pin_refused_ = false;
  std::string unix_hooks_detail_;  // why cgroup/connect_unix is not loaded ("" when it is)
  bool kill_lineage_ = true;   // the kernel has the kfuncs kill_lineage needs (writ_common.bpf.h)
  bool task_from_pid_ = true;  // self_tgid_of resolves thread ids (writ_self.bpf.h)
  uint32_t adopt_flags_ = 0;   // WRIT_ADOPT_* last set: AdoptHeartbeat rewrites them with the time
  // Tasks registered with WRIT_TASK_PROMPT (AddTask runs on API threads, RemoveTask on the
  // pipeline).
  absl::Mutex prompt_mu_;
  absl::flat_hash_set<uint64_t> prompt_tasks_ ABSL_GUARDED_BY(prompt_mu_);
  std::atomic<size_t> prompt_count_{0};
};

// libbpf's own messages go to the "libbpf" logger (debug level for its chatter, warn for warnings).
void RouteLibbpfLogs();

}  // namespace writ::bpf
