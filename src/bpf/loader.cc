#include "bpf/loader.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"
#include "writ.skel.h"
#include "writ_lsm.skel.h"

namespace writ::bpf {

namespace {

// One map element written, or the errno named with the map it failed on.
template <typename K, typename V>
absl::Status Update(bpf_map* map, const K& key, const V& value) {
  if (bpf_map__update_elem(map, &key, sizeof(key), &value, sizeof(value), BPF_ANY)) {
    return ErrnoStatus(errno, absl::StrCat("update ", bpf_map__name(map)));
  }
  return absl::OkStatus();
}

// The value of enumerator `name` of `enum bpf_attach_type` in the running kernel's BTF; -1 when it
// has none. The system's <linux/bpf.h> may predate attach types the kernel has
// (BPF_CGROUP_UNIX_CONNECT, 6.7).
int KernelAttachType(const char* name) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (libbpf_get_error(vmlinux)) return -1;
  int value = -1;
  const int id = btf__find_by_name_kind(vmlinux, "bpf_attach_type", BTF_KIND_ENUM);
  if (id > 0) {
    const btf_type* t = btf__type_by_id(vmlinux, id);
    const struct btf_enum* e = btf_enum(t);
    for (int i = 0; i < btf_vlen(t); i++) {
      if (strcmp(btf__name_by_offset(vmlinux, e[i].name_off), name) == 0) value = e[i].val;
    }
  }
  btf__free(vmlinux);
  return value;
}

}  // namespace

void Loader::SkelDeleter::operator()(writ_bpf* s) const { writ_bpf__destroy(s); }
void Loader::LinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }
void Loader::LsmDeleter::operator()(writ_lsm_bpf* s) const { writ_lsm_bpf__destroy(s); }

// What the kernel offers that the programs adapt to, read from its BTF before load (the answers
// become rodata constants: see writ_common.bpf.h). Missing BTF answers "the newest", and the load
// says why.
struct KernelFeatures {
  bool exit_group_dead = true;  // tp_btf/sched_process_exit passes group_dead (6.18; not 6.1)
  bool kill_lineage = true;     // kfuncs bpf_task_from_pid and bpf_send_signal_task (6.13+)
  bool task_from_pid = true;  // kfunc bpf_task_from_pid (6.2+): a thread id resolves to its process
};

static KernelFeatures ProbeKernelFeatures() {
  KernelFeatures f;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (libbpf_get_error(vmlinux)) return f;
  // typedef void (*btf_trace_sched_process_exit)(void *, struct task_struct *[, bool group_dead]);
  int id = btf__find_by_name_kind(vmlinux, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
  if (id > 0) {
    const btf_type* t = btf__type_by_id(vmlinux, btf__resolve_type(vmlinux, id));
    if (t && btf_is_ptr(t)) t = btf__type_by_id(vmlinux, t->type);
    if (t && btf_is_func_proto(t)) f.exit_group_dead = btf_vlen(t) >= 3;
  }
  // The programs test these with bpf_ksym_exists (libbpf resolves them at load); asked here only to
  // say in `writ status` whether a kernel deny can also kill the actor's parent (kill_lineage).
  f.task_from_pid = btf__find_by_name_kind(vmlinux, "bpf_task_from_pid", BTF_KIND_FUNC) > 0;
  f.kill_lineage =
      f.task_from_pid && btf__find_by_name_kind(vmlinux, "bpf_send_signal_task", BTF_KIND_FUNC) > 0;
  btf__free(vmlinux);
  return f;
}

// Loads the LSM object with the main object's maps (reused by fd, so both rungs read the same task
// map and tables) and attaches it. Kernels without BPF-LSM (not built, "bpf" missing from the lsm=
// boot list) or that refuse LSM programs fail here: the rung is reported unavailable with the
// reason.
void Loader::ProbeLsm() {
  std::string lsms = ReadFile("/sys/kernel/security/lsm").value_or("");
  writ_lsm_bpf* raw = writ_lsm_bpf__open();
  if (!raw) {
    lsm_detail_ = absl::StrCat("unavailable (open: ", strerror(errno), ")");
    return;
  }
  std::unique_ptr<writ_lsm_bpf, LsmDeleter> l(raw);
  // The path hooks exist where the kernel has CONFIG_SECURITY_PATH (Debian's, for AppArmor and
  // TOMOYO). Without them the link syscall tracepoints stay.
  {
    btf* vmlinux = btf__load_vmlinux_btf();
    lsm_links_ =
        vmlinux && btf__find_by_name_kind(vmlinux, "bpf_lsm_path_rename", BTF_KIND_FUNC) > 0;
    btf__free(vmlinux);
  }
  if (!lsm_links_) {
    bpf_program__set_autoload(l->progs.lsm_rename, false);
    bpf_program__set_autoload(l->progs.lsm_hardlink, false);
    bpf_program__set_autoload(l->progs.lsm_symlink, false);
  }
  l->rodata->cfg_task_level = cfg_.task_level;
  l->rodata->cfg_wakeup_bytes = cfg_.wakeup_bytes;
  l->rodata->cfg_exit_group_dead = skel_->rodata->cfg_exit_group_dead;
  // Where cgroup/sendmsg_unix judges datagrams to unix names (6.7+), the LSM rung leaves them to
  // it.
  l->rodata->cfg_unix_cgroup = HooksActive(hooks_, HookId::kCgroupUnix) ? 1 : 0;
  bpf_map* map;
  bpf_object__for_each_map(map, l->obj) {
    if (bpf_map__is_internal(map)) continue;
    bpf_map* main = bpf_object__find_map_by_name(skel_->obj, bpf_map__name(map));
    if (main) bpf_map__reuse_fd(map, bpf_map__fd(main));
  }
  int err = writ_lsm_bpf__load(l.get());
  if (err) {
    lsm_detail_ = absl::StrCat("unavailable (", strerror(-err), ")",
                               lsms.find("bpf") == std::string::npos
                                   ? "; \"bpf\" is not in /sys/kernel/security/lsm"
                                   : "");
    return;
  }
  err = writ_lsm_bpf__attach(l.get());
  if (err) {
    lsm_detail_ = absl::StrCat("unavailable (attach: ", strerror(-err), ")");
    return;
  }
  // Pinned like the main object's links: a writd that dies or restarts leaves them enforcing.
  for (int i = 0; i < l->skeleton->prog_cnt; i++) {
    bpf_link* link = *l->skeleton->progs[i].link;
    if (link) PinLink(link, l->skeleton->progs[i].name);
  }
  lsm_ = std::move(l);
  lsm_detail_ = "active";
}

// The pins a previous writd left for programs this one does not attach (the LSM object's where it
// does not load, the replaced syscall tracepoints' where it does): a pinned link keeps its program
// running on that writd's maps.
void Loader::UnpinUnused(const std::vector<std::string>& prog_names) {
  if (cfg_.pin_dir.empty()) return;
  for (const std::string& name : prog_names) {
    unlink(absl::StrCat(cfg_.pin_dir, "/link_", name).c_str());
  }
}

static std::vector<std::string> LsmProgramNames() {
  std::vector<std::string> names;
  writ_lsm_bpf* raw = writ_lsm_bpf__open();
  if (!raw) return names;
  bpf_program* prog;
  bpf_object__for_each_program(prog, raw->obj) names.push_back(bpf_program__name(prog));
  writ_lsm_bpf__destroy(raw);
  return names;
}

static int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  while (n > 0 && n <= static_cast<int>(sizeof(buf)) && (buf[n - 1] == '\n')) buf[--n] = '\0';
  auto log = Logger("libbpf");
  if (level == LIBBPF_WARN) {
    log->warn("{}", buf);
  } else {
    log->debug("{}", buf);
  }
  return 0;
}

void RouteLibbpfLogs() { libbpf_set_print(LibbpfPrint); }

Loader::Loader(const LoaderConfig& cfg, Handler handler)
    : cfg_(cfg), handler_(std::move(handler)) {}

Loader::~Loader() {
  // Detaching a tracepoint link waits for an RCU grace period (~50-100 ms each here). One after the
  // other, writd's ~45 links made a clean shutdown take seconds; detached from a few threads at
  // once the grace periods are shared.
  constexpr size_t kThreads = 8;
  std::vector<std::thread> detachers;
  for (size_t t = 0; t < kThreads && t < links_.size(); t++) {
    detachers.emplace_back([this, t] {
      for (size_t i = t; i < links_.size(); i += kThreads) links_[i].reset();
    });
  }
  for (auto& d : detachers) d.join();
  links_.clear();
}

absl::StatusOr<std::unique_ptr<Loader>> Loader::Open(const LoaderConfig& cfg, Handler handler) {
  if (cfg.ring_bytes < 4096 || (cfg.ring_bytes & (cfg.ring_bytes - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring buffer size ", cfg.ring_bytes, " must be a power of two >= 4096"));
  }
  std::unique_ptr<Loader> l(new Loader(cfg, std::move(handler)));
  RETURN_IF_ERROR(l->LoadAndAttach());
  return l;
}

// cgroup/connect_unix and cgroup/sendmsg_unix are compiled as sock_addr programs under a section
// libbpf 1.1 knows (it predates the unix ones); their attach types are the kernel's.
void Loader::PrepareUnixHooks(bool disable, const std::string& why) {
  const struct {
    bpf_program* prog;
    const char* type;
  } unix_progs[] = {{skel_->progs.cg_connect_unix, "BPF_CGROUP_UNIX_CONNECT"},
                    {skel_->progs.cg_sendmsg_unix, "BPF_CGROUP_UNIX_SENDMSG"}};
  for (const auto& u : unix_progs) {
    const int type = disable ? -1 : KernelAttachType(u.type);
    if (type < 0) {
      bpf_program__set_autoload(u.prog, false);
      if (unix_hooks_detail_.empty()) {
        unix_hooks_detail_ =
            disable ? why
                    : absl::StrCat("unavailable (the kernel has no ", u.type,
                                   ": Linux < 6.7); unix connects are judged at syscall exit");
      }
    } else {
      bpf_program__set_expected_attach_type(u.prog, static_cast<bpf_attach_type>(type));
    }
  }
}

// Opens the skeleton, points every map at its pin (libbpf reuses a compatible pinned map, else
// creates and pins it), and loads. A pinned map of another shape (a new ABI, another ring size)
// cannot be reused: then the old pins are removed and the load retried once with fresh maps.
absl::Status Loader::Load() {
  bool unix_off = false;  // a load that failed with the unix-socket hooks is retried without them
  bool fresh = false;     // pins that did not match were removed
  std::string unix_why;
  for (int attempt = 0; attempt < 3; attempt++) {
    writ_bpf* raw = writ_bpf__open();
    if (!raw) return ErrnoStatus(errno, "open BPF skeleton");
    skel_.reset(raw);
    unix_hooks_detail_.clear();
    PrepareUnixHooks(unix_off, unix_why);
    skel_->rodata->cfg_task_level = cfg_.task_level;
    skel_->rodata->cfg_wakeup_bytes = cfg_.wakeup_bytes;
    if (cfg_.dns_port == 0) {  // no stub: its programs would only return at their first line
      for (bpf_program* p : {skel_->progs.cg_dns_recvmsg4, skel_->progs.cg_dns_recvmsg6,
                             skel_->progs.cg_dns_peer4, skel_->progs.cg_dns_peer6}) {
        bpf_program__set_autoload(p, false);
      }
      if (cfg_.console_port == 0) bpf_program__set_autoload(skel_->progs.cg_dns_egress, false);
    }
    const KernelFeatures kf = ProbeKernelFeatures();
    skel_->rodata->cfg_exit_group_dead = kf.exit_group_dead;
    kill_lineage_ = kf.kill_lineage;
    task_from_pid_ = kf.task_from_pid;
    int err = bpf_map__set_max_entries(skel_->maps.events_map, cfg_.ring_bytes);
    if (err) return ErrnoStatus(-err, "set ring buffer size");
    if (!cfg_.pin_dir.empty()) {
      if (mkdir(cfg_.pin_dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoStatus(
            errno, absl::StrCat("mkdir ", cfg_.pin_dir, " (is bpffs mounted at /sys/fs/bpf?)"));
      }
      adopted_ = access((cfg_.pin_dir + "/task_map").c_str(), F_OK) == 0;
      bpf_map* map;
      bpf_object__for_each_map(map, skel_->obj) {
        if (bpf_map__is_internal(map)) continue;  // .rodata/.bss belong to one load
        std::string path = absl::StrCat(cfg_.pin_dir, "/", bpf_map__name(map));
        bpf_map__set_pin_path(map, path.c_str());
      }
    }
    err = writ_bpf__load(skel_.get());
    if (!err) return absl::OkStatus();
    if (!fresh && adopted_) {
      Logger("bpf")->warn("pinned maps under {} do not match this build ({}); starting fresh",
                          cfg_.pin_dir, strerror(-err));
      skel_.reset();
      Unpin();
      adopted_ = false;
      fresh = true;
      continue;
    }
    if (!unix_off && unix_hooks_detail_.empty()) {
      // The unix-socket hooks are the newest programs here: a kernel that refuses them must not
      // cost every other hook. Retried once without them; `writ status` says why.
      unix_off = true;
      unix_why = absl::StrCat("unavailable (load failed: ", strerror(-err),
                              "); unix connects are judged at syscall exit");
      Logger("bpf")->warn(
          "loading with the unix-socket cgroup hooks failed ({}): retrying without them",
          strerror(-err));
      skel_.reset();
      continue;
    }
    return ErrnoStatus(-err,
                       "load BPF programs (needs root, BTF at /sys/kernel/btf/vmlinux and a kernel "
                       ">= 5.17; run with -v for the verifier log)");
  }
  return absl::InternalError("unreachable");
}

// Pins a new link as <pin_dir>/link_<prog>, replacing a previous writd's link of the same program:
// the new program is attached before the old one is released, so enforcement has no gap (at worst
// both run for an instant and a record is seen twice).
void Loader::PinLink(bpf_link* link, const char* prog_name) {
  if (cfg_.pin_dir.empty()) return;
  std::string path = absl::StrCat(cfg_.pin_dir, "/link_", prog_name);
  std::string fresh = path + ".new";
  unlink(fresh.c_str());
  if (link_pin_refused_) return;
  if (bpf_link__pin(link, fresh.c_str()) != 0) {
    // Some kernels refuse BPF_OBJ_PIN of links (EPERM here): the guardian then holds the link fds.
    Logger("bpf")->info("pinning links is refused ({}): the guardian process holds them instead",
                        strerror(errno));
    link_pin_refused_ = true;
    return;
  }
  unlink(path.c_str());  // releases the previous writd's link, if any
  if (rename(fresh.c_str(), path.c_str()) != 0) {
    Logger("bpf")->warn("rename {}: {}", fresh, strerror(errno));
  }
}

std::vector<int> Loader::LinkFds() const {
  std::vector<int> fds;
  for (const auto& l : links_) fds.push_back(bpf_link__fd(l.get()));
  if (lsm_) {
    for (int i = 0; i < lsm_->skeleton->prog_cnt; i++) {
      if (bpf_link* link = *lsm_->skeleton->progs[i].link) fds.push_back(bpf_link__fd(link));
    }
  }
  return fds;
}

void Loader::Unpin() {
  if (cfg_.pin_dir.empty()) return;
  if (DIR* d = opendir(cfg_.pin_dir.c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
  }
  rmdir(cfg_.pin_dir.c_str());
}

absl::Status Loader::LoadAndAttach() {
  ncpus_ = libbpf_num_possible_cpus();
  if (ncpus_ <= 0) return ErrnoStatus(-ncpus_, "libbpf_num_possible_cpus");

  RETURN_IF_ERROR(Load());
  {
    // Before any program attaches, and over what a previous writd left in the (re-adopted) map:
    // its programs, attached for an instant beside these, send DNS to this writd's stub too.
    writ_dns_cfg dc{};
    dc.port = cfg_.dns_port;
    dc.addr4 = cfg_.dns_addr4;
    std::memcpy(dc.addr6, cfg_.dns_addr6, sizeof(dc.addr6));
    dc.console_port = cfg_.console_port;
    const uint32_t zero = 0;
    if (bpf_map__update_elem(skel_->maps.dns_cfg_map, &zero, sizeof(zero), &dc, sizeof(dc),
                             BPF_ANY) != 0) {
      return ErrnoStatus(errno, "update dns_cfg_map");
    }
  }
  struct Hook {
    bpf_program* prog;
    HookId id;
    const char* name;
  };
  std::vector<Hook> hooks = {
      {skel_->progs.handle_exec, HookId::kExec, "exec (tp_btf/sched_process_exec)"},
      {skel_->progs.handle_fork, HookId::kFork, "fork (tp_btf/sched_process_fork)"},
      {skel_->progs.handle_exit, HookId::kExit, "exit (tp_btf/sched_process_exit)"},
      {skel_->progs.exit_openat, HookId::kOpenExit, "open (syscalls/sys_exit_openat)"},
      {skel_->progs.exit_openat2, HookId::kOpenExit, "open (syscalls/sys_exit_openat2)"},
      {skel_->progs.exit_open, HookId::kOpenExit, "open (syscalls/sys_exit_open)"},
      {skel_->progs.exit_creat, HookId::kOpenExit, "open (syscalls/sys_exit_creat)"},
      {skel_->progs.enter_connect, HookId::kConnectEnter, "connect (syscalls/sys_enter_connect)"},
      {skel_->progs.exit_connect, HookId::kConnectExit, "connect (syscalls/sys_exit_connect)"},
      {skel_->progs.cg_connect4, HookId::kCgroupConnect, "connect (cgroup/connect4)"},
      {skel_->progs.cg_connect6, HookId::kCgroupConnect, "connect (cgroup/connect6)"},
      {skel_->progs.exit_open_by_handle_at, HookId::kOpenExit,
       "open (syscalls/sys_exit_open_by_handle_at)"},
      {skel_->progs.cg_sendmsg4, HookId::kCgroupSendmsg, "send (cgroup/sendmsg4)"},
      {skel_->progs.cg_sendmsg6, HookId::kCgroupSendmsg, "send (cgroup/sendmsg6)"},
      {skel_->progs.unix_enter_connect, HookId::kUnixConnect, "unix (syscalls/sys_enter_connect)"},
      {skel_->progs.unix_exit_connect, HookId::kUnixConnect, "unix (syscalls/sys_exit_connect)"},
      {skel_->progs.cg_connect_unix, HookId::kCgroupUnix, "unix (cgroup/connect_unix)"},
      {skel_->progs.cg_sendmsg_unix, HookId::kCgroupUnix, "unix (cgroup/sendmsg_unix)"},
      {skel_->progs.link_rename, HookId::kLink, "link (syscalls/sys_enter_rename)"},
      {skel_->progs.link_renameat, HookId::kLink, "link (syscalls/sys_enter_renameat)"},
      {skel_->progs.link_renameat2, HookId::kLink, "link (syscalls/sys_enter_renameat2)"},
      {skel_->progs.link_link, HookId::kLink, "link (syscalls/sys_enter_link)"},
      {skel_->progs.link_linkat, HookId::kLink, "link (syscalls/sys_enter_linkat)"},
      {skel_->progs.link_symlink, HookId::kLink, "link (syscalls/sys_enter_symlink)"},
      {skel_->progs.link_symlinkat, HookId::kLink, "link (syscalls/sys_enter_symlinkat)"},
  // Self-protection (bpf/writ_self.bpf.h).
#define WRIT_SELF_HOOK(sc)                                                            \
  {skel_->progs.self_enter_##sc, HookId::kSelf, "self (syscalls/sys_enter_" #sc ")"}, \
      {skel_->progs.self_exit_##sc, HookId::kSelf, "self (syscalls/sys_exit_" #sc ")"}
      WRIT_SELF_HOOK(kill),
      WRIT_SELF_HOOK(tkill),
      WRIT_SELF_HOOK(tgkill),
      WRIT_SELF_HOOK(rt_sigqueueinfo),
      WRIT_SELF_HOOK(rt_tgsigqueueinfo),
      WRIT_SELF_HOOK(pidfd_open),
      WRIT_SELF_HOOK(pidfd_getfd),
      WRIT_SELF_HOOK(ptrace),
      WRIT_SELF_HOOK(process_vm_readv),
      WRIT_SELF_HOOK(process_vm_writev),
      WRIT_SELF_HOOK(bpf),
      WRIT_SELF_HOOK(io_uring_setup),
      WRIT_SELF_HOOK(io_uring_enter),
      WRIT_SELF_HOOK(io_uring_register),
      WRIT_SELF_HOOK(fcntl),
      WRIT_SELF_HOOK(setpgid),
      WRIT_SELF_HOOK(ioctl),
      WRIT_SELF_HOOK(init_module),
      WRIT_SELF_HOOK(finit_module),
      WRIT_SELF_HOOK(kexec_load),
      WRIT_SELF_HOOK(kexec_file_load),
#undef WRIT_SELF_HOOK
  };
  if (cfg_.dns_port != 0 || cfg_.console_port != 0) {
    hooks.push_back(
        {skel_->progs.cg_dns_egress, HookId::kDns,
         cfg_.dns_port ? "dns (cgroup_skb/egress)" : "console peers (cgroup_skb/egress)"});
  }
  if (cfg_.dns_port != 0) {
    hooks.insert(hooks.end(),
                 {{skel_->progs.cg_dns_recvmsg4, HookId::kDns, "dns (cgroup/recvmsg4)"},
                  {skel_->progs.cg_dns_recvmsg6, HookId::kDns, "dns (cgroup/recvmsg6)"},
                  {skel_->progs.cg_dns_peer4, HookId::kDns, "dns (cgroup/getpeername4)"},
                  {skel_->progs.cg_dns_peer6, HookId::kDns, "dns (cgroup/getpeername6)"}});
  }

  Fd cg_fd;
  if (!cfg_.cgroup_root.empty()) {
    cg_fd.Reset(::open(cfg_.cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg_fd.valid()) return ErrnoStatus(errno, absl::StrCat("open ", cfg_.cgroup_root));
  }
  // What the LSM object reports and refuses itself where it loads: the syscall tracepoints of these
  // families are then not attached (one attached syscall tracepoint puts every process of the host
  // on the syscall slow path), nor cgroup/connect_unix (lsm/socket_connect judges unix names
  // first). Results of opens and connects come from fexit of those syscalls alone (a trampoline on
  // one function, no cost to any other syscall).
  auto lsm_replaces = [&](const Hook& h) -> const char* {
    switch (h.id) {
      case HookId::kOpenExit:
        return "lsm/file_open and fexit of the open syscalls";
      case HookId::kConnectEnter:
      case HookId::kConnectExit:
      case HookId::kUnixConnect:
        return "lsm/socket_connect and fexit/__x64_sys_connect";
      case HookId::kSelf:
        return "lsm/task_kill, ptrace_access_check, bpf, file_fcntl, file_ioctl, task_setpgid, "
               "kernel_read_file, kernel_load_data; fexit/__x64_sys_pidfd_open";
      case HookId::kLink:
        // Only where the path hooks load (ProbeLsm decides lsm_links_).
        return "lsm/path_rename, path_link, path_symlink";
      case HookId::kCgroupUnix:
        return h.prog == skel_->progs.cg_connect_unix ? "lsm/socket_connect" : nullptr;
      default:
        return nullptr;
    }
  };
  // Whether the LSM object, once probed, replaces this hook.
  auto replaced_by = [&](const Hook& h) -> const char* {
    if (!lsm_active() || (h.id == HookId::kLink && !lsm_links_)) return nullptr;
    return lsm_replaces(h);
  };
  auto attach = [&](const Hook& h) {
    HookStatus st{h.id, h.name, false, ""};
    bpf_link* link = nullptr;
    if (!bpf_program__autoload(h.prog)) {
      st.detail = unix_hooks_detail_;  // the only programs left out on purpose
      hooks_.push_back(std::move(st));
      return;
    }
    if (h.id == HookId::kCgroupConnect || h.id == HookId::kCgroupSendmsg ||
        h.id == HookId::kCgroupUnix || h.id == HookId::kDns) {
      if (cg_fd.valid())
        link = bpf_program__attach_cgroup(h.prog, cg_fd.get());
      else
        errno = EBADF;
    } else {
      link = bpf_program__attach(h.prog);
    }
    if (link) {
      PinLink(link, bpf_program__name(h.prog));
      links_.emplace_back(link);
      st.active = true;
    } else {
      st.detail = absl::StrCat("unavailable (", strerror(errno), ")");
    }
    hooks_.push_back(std::move(st));
  };
  // The hooks every rung keeps first (the LSM object reads what cgroup/sendmsg_unix covers), then
  // the LSM object, then what it does not replace.
  for (const Hook& h : hooks) {
    if (!lsm_replaces(h)) attach(h);
  }
  // The exec hook is the spine of attribution: without it writ cannot name what a task runs.
  if (std::string why; !HooksActive(hooks_, HookId::kExec, &why)) {
    return absl::FailedPreconditionError(absl::StrCat("attach ", why));
  }
  if (cfg_.lsm) {
    ProbeLsm();
  } else {
    lsm_detail_ = "off (writd.yaml bpf_lsm: off)";
  }
  if (!lsm_active()) UnpinUnused(LsmProgramNames());
  // A writd without the DNS stub must not leave the links of one that had it: they would redirect
  // tasks' DNS to a port nobody serves.
  if (cfg_.dns_port == 0) {
    UnpinUnused({"cg_dns_recvmsg4", "cg_dns_recvmsg6", "cg_dns_peer4", "cg_dns_peer6"});
    if (cfg_.console_port == 0) UnpinUnused({"cg_dns_egress"});
  }
  std::vector<std::string> replaced;
  for (const Hook& h : hooks) {
    if (!lsm_replaces(h)) continue;  // attached above
    const char* by = replaced_by(h);
    if (!by) {
      attach(h);
      continue;
    }
    replaced.push_back(bpf_program__name(h.prog));
    hooks_.push_back({h.id, h.name, false, absl::StrCat("not attached: ", by, " (BPF-LSM)")});
  }
  UnpinUnused(replaced);
  for (const char* h :
       {"exec (lsm/bprm_check_security)",
        "open (lsm/file_open; fexit/__x64_sys_{openat,openat2,open,creat,open_by_handle_at})",
        "connect (lsm/socket_connect; fexit/__x64_sys_connect)", "unix send (lsm/socket_sendmsg)",
        "link (lsm/path_rename, lsm/path_link, lsm/path_symlink)",
        "self (lsm/task_kill, ptrace_access_check, bpf, file_fcntl, file_ioctl, "
        "file_send_sigiotask, task_setpgid, kernel_read_file, kernel_load_data)"}) {
    const bool link_row = absl::StartsWith(h, "link ");
    const bool active = lsm_active() && (!link_row || lsm_links_);
    hooks_.push_back({HookId::kLsm, h, active,
                      active         ? ""
                      : lsm_active() ? "unavailable (no path hooks: CONFIG_SECURITY_PATH); "
                                       "syscalls/sys_enter_rename... instead"
                                     : lsm_detail_});
  }

  ASSIGN_OR_RETURN(
      ring_,
      RingReader::Open(bpf_map__fd(skel_->maps.events_map), bpf_map__fd(skel_->maps.consumer_map),
                       [this](const void* data, size_t size) { handler_(data, size); }));
  // Per-program run time costs two clock reads per run of every BPF program on the host (the switch
  // is global): only on request (writd.yaml metrics.bpf_program_stats). /metrics reports it as the
  // BPF cost.
  if (cfg_.program_stats) {
    stats_fd_.Reset(bpf_enable_stats(BPF_STATS_RUN_TIME));
    if (!stats_fd_.valid()) {
      return ErrnoStatus(errno, "enable BPF run-time stats (metrics.bpf_program_stats)");
    }
  }
  return absl::OkStatus();
}

std::vector<Rung> EnforcementRungs(const std::vector<HookStatus>& hooks, const KernelFacts& k) {
  const bool lsm = k.lsm_active;
  std::vector<Rung> out;
  out.push_back(
      {"lsm: BPF-LSM refuses exec/open/connect with EPERM (prevented)", lsm, k.lsm_detail});
  if (lsm) {
    out.push_back(
        {"exec: lsm (bprm_check_security: exec.deny refused with EPERM); allow lists, "
         "approvals: kernel-signal (sched_process_exec)",
         true, ""});
    out.push_back({"open: lsm (file_open: a denied file refused with EPERM, prevented)", true, ""});
    out.push_back({"connect: lsm (socket_connect: EPERM, prevented)", true, ""});
  } else {
    auto rung = [&](const char* name, HookId id) {
      std::string why;
      const bool active = HooksActive(hooks, id, &why);
      out.push_back({name, active, why});
    };
    rung("exec: kernel-signal (sched_process_exec + bpf_send_signal: killed)", HookId::kExec);
    rung("open: kernel-signal at syscall exit (killed_after)", HookId::kOpenExit);
    rung("connect: cgroup-bpf (cgroup/connect4|6: EPERM, prevented)", HookId::kCgroupConnect);
  }
  // The hooks without an LSM counterpart: the same rung on every kernel.
  {
    std::string why;
    out.push_back(
        {"send: cgroup-bpf (cgroup/sendmsg4|6: a datagram to a denied address, EPERM, "
         "prevented)",
         HooksActive(hooks, HookId::kCgroupSendmsg, &why), why});
  }
  {
    std::string why, exit_why;
    if (lsm) {
      // lsm/socket_connect before the lookup; datagrams by lsm/socket_sendmsg, or by
      // cgroup/sendmsg_unix where it loads (6.7+: the LSM hook leaves them to it).
      out.push_back({HooksActive(hooks, HookId::kCgroupUnix)
                         ? "unix: lsm (socket_connect: EPERM before the lookup, prevented); "
                           "datagrams cgroup/sendmsg_unix"
                         : "unix: lsm (socket_connect, socket_sendmsg: EPERM before the lookup, "
                           "prevented)",
                     true, ""});
    } else if (HooksActive(hooks, HookId::kCgroupUnix, &why)) {
      out.push_back(
          {"unix: cgroup-bpf (cgroup/connect_unix, sendmsg_unix: EPERM, prevented)", true, ""});
    } else {
      // Linux < 6.7: judged at the connect's exit, and killed there.
      const bool at_exit = HooksActive(hooks, HookId::kUnixConnect, &exit_why);
      out.push_back(
          {"unix: kernel-signal at connect exit (killed_after; datagrams to a unix name "
           "unjudged)",
           at_exit, at_exit ? "" : exit_why});
    }
  }
  {
    // The LSM path hooks replace the link tracepoints where they load (CONFIG_SECURITY_PATH).
    bool lsm_link = false;
    for (const HookStatus& h : hooks) {
      if (h.id == HookId::kLsm && h.active && absl::StartsWith(h.name, "link ")) lsm_link = true;
    }
    std::string why;
    if (lsm_link) {
      out.push_back(
          {"link: lsm (path_rename, path_link, path_symlink: a new name for a denied file "
           "refused with EPERM, prevented)",
           true, ""});
    } else {
      out.push_back(
          {"link: kernel-signal at sys_enter (a rename or link of a denied name: killed_after)",
           HooksActive(hooks, HookId::kLink, &why), why});
    }
  }
  if (lsm) {
    out.push_back(
        {"self: lsm (task_kill, ptrace_access_check, bpf, file_fcntl, file_ioctl, "
         "file_send_sigiotask, task_setpgid, "
         "kernel_read_file, kernel_load_data: EPERM and reported, with or without writ run's "
         "filter, which writ run then leaves off)",
         true, ""});
    // task_kill sees the receiving task itself: any thread of writd, on every kernel.
    out.push_back(
        {"self-threads: a signal to any thread of writd is recognised (lsm/task_kill)", true, ""});
  } else {
    std::string why;
    out.push_back(
        {"self: seccomp (writ run's filter: EPERM); without it kernel-signal at sys_enter",
         HooksActive(hooks, HookId::kSelf, &why), why});
    out.push_back(
        {"self-threads: a signal to any thread of writd is recognised (bpf_task_from_pid)",
         k.task_from_pid,
         "unavailable (Linux < 6.2): only the thread ids writd and the guardian have as "
         "processes are; the filter refuses the others unreported, the fallback misses them"});
  }
  out.push_back(
      {"lineage: a kernel deny also kills the actor's parent in the task "
       "(bpf_send_signal_task)",
       k.kill_lineage,
       "unavailable (no bpf_send_signal_task kfunc, Linux < 6.13): the actor's shell may run "
       "its next command until userspace kills the task"});
  out.push_back({"userspace: cgroup.kill / pidfd_send_signal", true, ""});
  return out;
}

std::vector<Rung> Loader::Rungs() const {
  return EnforcementRungs(hooks_, {lsm_active(), lsm_detail_, kill_lineage_, task_from_pid_});
}

std::vector<Loader::ProgramStats> Loader::ReadProgramStats() const {
  std::vector<ProgramStats> out;
  // The main object's programs and, where it loaded, the LSM object's (it replaces the syscall
  // tracepoints there: its cost is the rung's cost).
  for (bpf_object* obj : {skel_->obj, lsm_ ? lsm_->obj : nullptr}) {
    if (!obj) continue;
    bpf_program* prog;
    bpf_object__for_each_program(prog, obj) {
      if (bpf_program__fd(prog) < 0) continue;  // not loaded (autoload off)
      bpf_prog_info info = {};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) continue;
      out.push_back({bpf_program__name(prog), info.run_cnt, info.run_time_ns});
    }
  }
  return out;
}

std::vector<Loader::MapEntries> Loader::CountMapEntries() const {
  std::vector<MapEntries> out;
  bpf_map* m;
  bpf_object__for_each_map(m, skel_->obj) {
    const bpf_map_type t = bpf_map__type(m);
    if (t != BPF_MAP_TYPE_HASH && t != BPF_MAP_TYPE_LRU_HASH && t != BPF_MAP_TYPE_LPM_TRIE)
      continue;
    const int fd = bpf_map__fd(m);
    if (fd < 0) continue;
    std::vector<uint8_t> key(bpf_map__key_size(m)), next(key.size());
    uint64_t n = 0;
    const uint64_t bound = uint64_t{bpf_map__max_entries(m)} + 1;
    const void* prev = nullptr;  // nullptr: the first key
    while (n < bound && bpf_map_get_next_key(fd, prev, next.data()) == 0) {
      ++n;
      key.swap(next);
      prev = key.data();
    }
    out.push_back({bpf_map__name(m), n});
  }
  return out;
}

int Loader::Poll(int timeout_ms) {
  // Spin only while a task's records want prompt verdicts: telemetry-only traffic is drained in
  // batches, and a consumer that chases its producers record by record costs them cache misses.
  ring_->set_spin_ns(prompt_count_.load(std::memory_order_relaxed) > 0 ? cfg_.spin_ns : 0);
  return ring_->Poll(timeout_ms);
}

int Loader::Drain() { return ring_->Consume(); }

absl::Status Loader::AddTask(uint64_t cgroup_id, const writ_task_info& info) {
  RETURN_IF_ERROR(Update(skel_->maps.task_map, cgroup_id, info));
  absl::MutexLock lock(&prompt_mu_);
  if (info.flags & WRIT_TASK_PROMPT) {
    prompt_tasks_.insert(cgroup_id);
  } else {
    prompt_tasks_.erase(cgroup_id);
  }
  prompt_count_.store(prompt_tasks_.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Loader::RemoveTask(uint64_t cgroup_id) {
  {
    absl::MutexLock lock(&prompt_mu_);
    prompt_tasks_.erase(cgroup_id);
    prompt_count_.store(prompt_tasks_.size(), std::memory_order_relaxed);
  }
  if (bpf_map__delete_elem(skel_->maps.task_map, &cgroup_id, sizeof(cgroup_id), 0) &&
      errno != ENOENT) {
    return ErrnoStatus(errno, "remove task from task_map");
  }
  return absl::OkStatus();
}

bool HooksActive(const std::vector<HookStatus>& hooks, HookId id, std::string* why) {
  bool any = false, all = true;
  for (const HookStatus& h : hooks) {
    if (h.id != id) continue;
    any = true;
    if (!h.active) {
      all = false;
      if (why) absl::StrAppend(why, why->empty() ? "" : "; ", h.name, ": ", h.detail);
    }
  }
  if (!any && why) *why = "not attached by this writd";
  return any && all;
}

absl::Status Loader::SetProtectedPids(uint32_t writd, uint32_t guardian, uint32_t writd_pgid) {
  const uint32_t vals[WRIT_SELF_PIDS] = {writd, guardian, writd_pgid, 0};
  static_assert(WRIT_SELF_PID_WRITD == 0 && WRIT_SELF_PID_GUARDIAN == 1 &&
                WRIT_SELF_PGID_WRITD == 2);
  for (uint32_t k = 0; k < WRIT_SELF_PIDS; k++) {
    RETURN_IF_ERROR(Update(skel_->maps.self_pids_map, k, vals[k]));
  }
  return absl::OkStatus();
}

absl::Status Loader::SetExecVerdict(uint32_t slot, uint64_t path_hash, uint32_t verdict) {
  writ_path_key key{};
  key.slot = slot;
  key.hash = path_hash;
  return Update(skel_->maps.exec_map, key, verdict);
}

absl::Status Loader::SetFileDeny(uint32_t slot, uint64_t path_hash, uint32_t kind) {
  writ_path_key key{};
  key.slot = slot;
  key.kind = kind;
  key.hash = path_hash;
  return Update(skel_->maps.file_map, key, uint32_t{WRIT_KV_DENY});
}

absl::Status Loader::SetNet4(const writ_net4_key& key, const writ_net_value& value) {
  return Update(skel_->maps.net4_map, key, value);
}

absl::Status Loader::SetNet6(const writ_net6_key& key, const writ_net_value& value) {
  return Update(skel_->maps.net6_map, key, value);
}

absl::Status Loader::GrantConnect(const writ_grant_key& key) {
  return Update(skel_->maps.grant_map, key, uint32_t{1});
}

absl::Status Loader::SetUnixVerdict(uint32_t slot, uint32_t kind, uint64_t hash, uint32_t verdict) {
  writ_path_key key{};
  key.slot = slot;
  key.kind = kind;
  key.hash = hash;
  return Update(skel_->maps.unix_map, key, verdict);
}

// Walks a map with get_next_key and deletes the keys a predicate selects. Table maps are small per
// task.
template <typename Key, typename Pred>
static void DeleteWhere(bpf_map* map, Pred pred) {
  std::vector<Key> doomed;
  Key k{}, next{};
  Key* prev = nullptr;
  while (bpf_map__get_next_key(map, prev, &next, sizeof(Key)) == 0) {
    if (pred(next)) doomed.push_back(next);
    k = next;
    prev = &k;
  }
  for (const Key& d : doomed) bpf_map__delete_elem(map, &d, sizeof(Key), 0);
}

void Loader::ClearTables(uint32_t slot) {
  DeleteWhere<writ_path_key>(skel_->maps.exec_map,
                             [slot](const writ_path_key& k) { return k.slot == slot; });
  DeleteWhere<writ_path_key>(skel_->maps.file_map,
                             [slot](const writ_path_key& k) { return k.slot == slot; });
  DeleteWhere<writ_grant_key>(skel_->maps.grant_map,
                              [slot](const writ_grant_key& k) { return k.slot == slot; });
  DeleteWhere<writ_path_key>(skel_->maps.unix_map,
                             [slot](const writ_path_key& k) { return k.slot == slot; });
  DeleteWhere<writ_grant_key>(skel_->maps.send_seen_map,
                              [slot](const writ_grant_key& k) { return k.slot == slot; });
  DeleteWhere<writ_pin_key>(skel_->maps.pin_map,
                            [slot](const writ_pin_key& k) { return k.slot == slot; });
  uint32_t be = htonl(slot);
  DeleteWhere<writ_net4_key>(skel_->maps.net4_map,
                             [be](const writ_net4_key& k) { return k.slot_be == be; });
  DeleteWhere<writ_net6_key>(skel_->maps.net6_map,
                             [be](const writ_net6_key& k) { return k.slot_be == be; });
}

absl::Status Loader::PinAddress(uint32_t slot, uint64_t generation, int family, const uint8_t* addr,
                                uint64_t expires_boot_ns,
                                const std::vector<std::pair<uint16_t, uint16_t>>& ports,
                                const std::string& name) {
  writ_pin_key k{};
  k.slot = slot;
  k.family = static_cast<uint16_t>(family);
  std::memcpy(k.addr, addr, family == AF_INET ? 4 : 16);
  writ_pin_value v{};
  v.expires_ns = expires_boot_ns;
  v.generation = generation;
  for (const auto& [lo, hi] : ports) {
    if (v.nranges == WRIT_PIN_RANGES) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "pin: more than ", WRIT_PIN_RANGES, " port ranges for one address of slot ", slot));
    }
    v.ranges[v.nranges++] = {lo, hi, WRIT_KV_ALLOW};
  }
  std::memcpy(v.name, name.data(), std::min(name.size(), sizeof(v.name) - 1));
  if (bpf_map__update_elem(skel_->maps.pin_map, &k, sizeof(k), &v, sizeof(v), BPF_ANY) != 0) {
    return ErrnoStatus(errno, "update pin_map");
  }
  return absl::OkStatus();
}

void Loader::UnpinAddress(uint32_t slot, int family, const uint8_t* addr) {
  writ_pin_key k{};
  k.slot = slot;
  k.family = static_cast<uint16_t>(family);
  std::memcpy(k.addr, addr, family == AF_INET ? 4 : 16);
  bpf_map__delete_elem(skel_->maps.pin_map, &k, sizeof(k), 0);
}

std::vector<Loader::PinEntry> Loader::ReadPins(uint32_t slot) const {
  std::vector<PinEntry> out;
  writ_pin_key k{}, next{};
  const writ_pin_key* prev = nullptr;
  const int fd = bpf_map__fd(skel_->maps.pin_map);
  for (int n = 0; n < 65536 && bpf_map_get_next_key(fd, prev, &next) == 0; ++n) {
    k = next;
    prev = &k;
    if (k.slot != slot) continue;
    writ_pin_value v{};
    if (bpf_map_lookup_elem(fd, &k, &v) != 0) continue;
    PinEntry e;
    e.family = k.family;
    std::memcpy(e.addr, k.addr, 16);
    e.expires_boot_ns = v.expires_ns;
    e.generation = v.generation;
    e.name.assign(v.name, strnlen(v.name, sizeof(v.name)));
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

// The peer-map key of a packet source as a socket saw it (a dual-stack socket's IPv4 peer is
// v4-mapped; the packet, and so the key, is IPv4).
std::optional<writ_dns_peer_key> PeerKey(int proto, const sockaddr_storage& src) {
  writ_dns_peer_key k{};
  k.proto = static_cast<uint8_t>(proto);
  if (src.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&src);
    k.family = AF_INET;
    k.port = ntohs(in->sin_port);
    std::memcpy(k.addr, &in->sin_addr, 4);
  } else if (src.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&src);
    k.port = ntohs(in6->sin6_port);
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(&in6->sin6_addr, kMapped, 12) == 0) {  // an IPv4 packet on a dual-stack socket
      k.family = AF_INET;
      std::memcpy(k.addr, reinterpret_cast<const uint8_t*>(&in6->sin6_addr) + 12, 4);
    } else {
      k.family = AF_INET6;
      std::memcpy(k.addr, &in6->sin6_addr, 16);
    }
  } else {
    return std::nullopt;
  }
  return k;
}

}  // namespace

std::optional<uint64_t> Loader::TakeConsolePeer(const sockaddr_storage& src) {
  std::optional<writ_dns_peer_key> k = PeerKey(IPPROTO_TCP, src);
  if (!k || !skel_) return std::nullopt;
  uint64_t cgid = 0;
  if (bpf_map__lookup_and_delete_elem(skel_->maps.console_peer_map, &*k, sizeof(*k), &cgid,
                                      sizeof(cgid), 0) != 0) {
    return std::nullopt;
  }
  return cgid;
}

std::optional<DnsPeer> Loader::LookupDnsPeer(int proto, const sockaddr_storage& src) const {
  std::optional<writ_dns_peer_key> key = PeerKey(proto, src);
  if (!key) return std::nullopt;
  const writ_dns_peer_key& k = *key;
  writ_dns_peer v{};
  if (bpf_map__lookup_elem(skel_->maps.dns_peer_map, &k, sizeof(k), &v, sizeof(v), 0) != 0) {
    return std::nullopt;
  }
  DnsPeer p;
  p.cgroup_id = v.cgroup_id;
  p.orig_family = v.orig.family;
  std::memcpy(p.orig_addr, v.orig.addr, 16);
  p.orig_port = v.orig.port;
  return p;
}

Counters Loader::ReadCounters() const {
  Counters c;
  std::vector<uint64_t> vals(ncpus_);
  for (uint32_t kind = 0; kind < WRIT_EV_KIND_MAX; kind++) {
    for (uint32_t which = 0; which < WRIT_CNT_MAX; which++) {
      uint32_t key = kind * WRIT_CNT_MAX + which;
      if (bpf_map__lookup_elem(skel_->maps.counters_map, &key, sizeof(key), vals.data(),
                               vals.size() * sizeof(uint64_t), 0)) {
        continue;
      }
      uint64_t sum = 0;
      for (uint64_t v : vals) sum += v;
      uint64_t* dst = which == WRIT_CNT_EMITTED      ? c.emitted
                      : which == WRIT_CNT_DROPPED    ? c.dropped
                      : which == WRIT_CNT_SUPPRESSED ? c.suppressed
                                                     : c.fail_closed;
      dst[kind] = sum;
    }
  }
  return c;
}

absl::Status Loader::SetDynamicLoaders(const std::vector<std::pair<uint32_t, uint64_t>>& ids) {
  std::vector<uint64_t> keys;
  for (const auto& [dev, ino] : ids) keys.push_back(writ_file_id_hash(dev, ino));
  const uint32_t one = 1;
  for (uint64_t k : keys) RETURN_IF_ERROR(Update(skel_->maps.loader_map, k, one));
  DeleteWhere<uint64_t>(skel_->maps.loader_map, [&](uint64_t k) {
    return std::find(keys.begin(), keys.end(), k) == keys.end();
  });
  return absl::OkStatus();
}

// Adoption keys are few (one per workload): the maps are rewritten whole, stale keys deleted after
// the new ones are in, so a reload never opens a window where a configured exe is not a candidate.
absl::Status Loader::SetAdoptTables(uint32_t flags, const std::vector<uint64_t>& exe_hashes,
                                    const std::vector<uint32_t>& uids) {
  if (exe_hashes.size() > WRIT_ADOPT_MAX_KEYS || uids.size() > WRIT_ADOPT_MAX_KEYS) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", WRIT_ADOPT_MAX_KEYS, " workload exe paths or uids"));
  }
  const uint32_t one = 1;
  for (uint64_t h : exe_hashes) RETURN_IF_ERROR(Update(skel_->maps.adopt_exe_map, h, one));
  for (uint32_t u : uids) RETURN_IF_ERROR(Update(skel_->maps.adopt_uid_map, u, one));
  DeleteWhere<uint64_t>(skel_->maps.adopt_exe_map, [&](uint64_t k) {
    return std::find(exe_hashes.begin(), exe_hashes.end(), k) == exe_hashes.end();
  });
  DeleteWhere<uint32_t>(skel_->maps.adopt_uid_map, [&](uint32_t k) {
    return std::find(uids.begin(), uids.end(), k) == uids.end();
  });
  adopt_flags_ = flags;
  uint32_t zero = 0;
  writ_adopt_cfg cfg{};
  if (bpf_map__lookup_elem(skel_->maps.adopt_cfg_map, &zero, sizeof(zero), &cfg, sizeof(cfg), 0)) {
    cfg = writ_adopt_cfg{};
  }
  cfg.flags = flags;
  return Update(skel_->maps.adopt_cfg_map, zero, cfg);
}

absl::Status Loader::AdoptHeartbeat(uint64_t now_boot_ns, uint64_t stale_ns) {
  uint32_t zero = 0;
  writ_adopt_cfg cfg{};
  cfg.flags = adopt_flags_;
  cfg.heartbeat_ns = now_boot_ns;
  cfg.stale_ns = stale_ns;
  return Update(skel_->maps.adopt_cfg_map, zero, cfg);
}

}  // namespace writ::bpf
