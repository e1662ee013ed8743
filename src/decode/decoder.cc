#include "decode/decoder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "util/util.h"

namespace writ::decode {

// The layouts both compilers must agree on. A change here is an ABI change: bump WRIT_ABI_VERSION.
static_assert(sizeof(writ_event_hdr) == 80);
static_assert(offsetof(writ_event_hdr, ktime_ns) == 8);
static_assert(offsetof(writ_event_hdr, cgroup_id) == 16);
static_assert(offsetof(writ_event_hdr, task_slot) == 32);
static_assert(offsetof(writ_event_hdr, flags) == 56);
static_assert(offsetof(writ_event_hdr, comm) == 64);
static_assert(offsetof(writ_exec_event, path) == 104);
static_assert(offsetof(writ_exec_event, args) ==
              104 + WRIT_PATH_MAX + WRIT_NAME_MAX + WRIT_NAME_MAX);
static_assert(offsetof(writ_open_event, ino) == 96);
static_assert(offsetof(writ_open_event, path) == 112);
static_assert(sizeof(writ_connect_event) == 112);
static_assert(offsetof(writ_connect_event, suppressed) == 108);
static_assert(offsetof(writ_unix_connect_event, name) == 120);
static_assert(offsetof(writ_unix_connect_event, peer) == 120 + WRIT_UNIX_NAME_MAX);
static_assert(offsetof(writ_link_event, data) == 104);
static_assert(sizeof(writ_fork_event) == 96);
static_assert(sizeof(writ_exit_event) == 88);
static_assert(sizeof(writ_self_event) == 120);
static_assert(offsetof(writ_self_event, args) == 88);
static_assert(sizeof(writ_task_info) == 16);
static_assert(sizeof(writ_path_key) == 16);
static_assert(sizeof(writ_net4_key) == 12);
static_assert(sizeof(writ_net6_key) == 24);
static_assert(sizeof(writ_net_value) == 8 + 8 * WRIT_NET_RANGES);
static_assert(sizeof(writ_adopt_event) == 96);
static_assert(sizeof(writ_adopt_cfg) == 24);

// EventKind's values are the ABI's record kinds.
static_assert(static_cast<int>(EventKind::kExec) == WRIT_EV_EXEC);
static_assert(static_cast<int>(EventKind::kFork) == WRIT_EV_FORK);
static_assert(static_cast<int>(EventKind::kExit) == WRIT_EV_EXIT);
static_assert(static_cast<int>(EventKind::kOpen) == WRIT_EV_OPEN);
static_assert(static_cast<int>(EventKind::kConnect) == WRIT_EV_CONNECT);
static_assert(static_cast<int>(EventKind::kAdopt) == WRIT_EV_ADOPT);
static_assert(static_cast<int>(EventKind::kSelf) == WRIT_EV_SELF);
static_assert(static_cast<int>(EventKind::kLink) == WRIT_EV_LINK);
static_assert(kEventKinds == WRIT_EV_KIND_MAX);

const char* KindName(uint16_t kind) {
  return kind < kEventKinds ? EventKindName(static_cast<EventKind>(kind)) : "unknown";
}

void ComponentsToPath(const char* data, size_t len, std::string* out) {
  // Components are NUL-terminated, leaf first. Every NUL becomes a '/' and one more leads: the path
  // is len + 1 bytes, sized once and filled from its end, leaf first.
  while (len > 0 && data[len - 1] == '\0') len--;
  if (len == 0) {
    out->push_back('/');
    return;
  }
  const size_t old = out->size();
  out->resize(old + len + 1);
  char* end = out->data() + old + len + 1;
  size_t i = 0;
  for (;;) {
    const auto* nul = static_cast<const char*>(std::memchr(data + i, '\0', len - i));
    const size_t clen = nul ? static_cast<size_t>(nul - (data + i)) : len - i;
    end -= clen;
    std::memcpy(end, data + i, clen);
    *--end = '/';
    if (!nul) break;
    i += clen + 1;
  }
}

void AppendOpenFlags(uint32_t flags, google::protobuf::RepeatedPtrField<std::string>* out) {
  int acc = flags & O_ACCMODE;
  if (acc == O_RDONLY || acc == O_RDWR) out->Add()->assign("read");
  if (acc == O_WRONLY || acc == O_RDWR) out->Add()->assign("write");
  if (flags & O_CREAT) out->Add()->assign("create");
  if (flags & O_TRUNC) out->Add()->assign("truncate");
}

static const char* SyscallName(uint32_t nr) {
  switch (nr) {
    case 2:
      return "open";
    case 85:
      return "creat";
    case 257:
      return "openat";
    case 437:
      return "openat2";
    case 304:
      return "open_by_handle_at";
    case 426:
      return "io_uring_enter";  // an io_uring open (lsm/file_open)
    default:
      return "";
  }
}

static const char* LinkSyscallName(uint32_t nr) {
  switch (nr) {
    case 82:
      return "rename";
    case 264:
      return "renameat";
    case 316:
      return "renameat2";
    case 86:
      return "link";
    case 265:
      return "linkat";
    case 88:
      return "symlink";
    case 266:
      return "symlinkat";
    default:
      return "";
  }
}

void LexicalJoin(std::string_view base, std::string_view rel, std::string* out) {
  const size_t start = out->size();
  auto add = [&](std::string_view path) {
    size_t i = 0;
    while (i < path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string_view::npos) j = path.size();
      std::string_view c = path.substr(i, j - i);
      i = j + 1;
      if (c.empty() || c == ".") continue;
      if (c == "..") {
        const size_t cut = out->rfind('/');
        out->resize(cut == std::string::npos || cut < start ? start : cut);
        continue;
      }
      out->push_back('/');
      out->append(c);
    }
  };
  if (rel.empty() || rel[0] != '/') add(base);
  add(rel);
  if (out->size() == start) out->push_back('/');
}

const char* SelfSyscallName(uint32_t nr) {
  switch (nr) {
    case 62:
      return "kill";
    case 2:
      return "open";  // /proc/<pid>/mem of another process (lsm/ptrace_access_check)
    case 257:
      return "openat";
    case 437:
      return "openat2";
    case 424:
      return "pidfd_send_signal";  // lsm/task_kill
    case 101:
      return "ptrace";
    case 129:
      return "rt_sigqueueinfo";
    case 200:
      return "tkill";
    case 234:
      return "tgkill";
    case 297:
      return "rt_tgsigqueueinfo";
    case 310:
      return "process_vm_readv";
    case 311:
      return "process_vm_writev";
    case 321:
      return "bpf";
    case 425:
      return "io_uring_setup";
    case 426:
      return "io_uring_enter";
    case 427:
      return "io_uring_register";
    case 434:
      return "pidfd_open";
    case 438:
      return "pidfd_getfd";
    case 16:
      return "ioctl";
    case 72:
      return "fcntl";
    case 109:
      return "setpgid";
    case 175:
      return "init_module";
    case 313:
      return "finit_module";
    case 246:
      return "kexec_load";
    case 320:
      return "kexec_file_load";
    default:
      return "unknown";
  }
}

static const char* SelfTargetName(uint32_t t) {
  switch (t) {
    case WRIT_SELF_WRITD:
      return "writd";
    case WRIT_SELF_GUARDIAN:
      return "guardian";
    case WRIT_SELF_OTHER:
      return "process";
    case WRIT_SELF_ALL:
      return "all";
    default:
      return "";
  }
}

// Bounded string from a fixed buffer: stops at the first NUL.
static void AssignCStr(const char* p, size_t max, std::string* out) {
  out->assign(p, strnlen(p, max));
}

// Event::Clear() (proto3, no arena) deletes every sub-message with its strings: a dozen allocations
// and frees per record on the hot path. Decode fills process for every record and file, network or
// syscall by kind, so those four are taken out before the Clear, cleared in place (keeping their
// buffers and repeated fields' elements) and the ones this record uses put back; the others wait in
// the decoder for a record of their kind, so a stream that alternates kinds allocates nothing
// either. Which fields are present afterwards is exactly what Clear() followed by Decode gives.
void Decoder::ClearForRecord(uint16_t kind, v1::Event* ev) {
  if (ev->GetArena() != nullptr) {
    ev->Clear();
    return;
  }
  v1::Process* p = ev->has_process() ? ev->release_process() : nullptr;
  if (ev->has_file()) spare_file_.reset(ev->release_file());
  if (ev->has_network()) spare_network_.reset(ev->release_network());
  if (ev->has_syscall()) spare_syscall_.reset(ev->release_syscall());
  ev->Clear();
  if (p) {
    p->Clear();
    ev->set_allocated_process(p);
  }
  auto reuse = [](auto& spare, auto set) {
    if (!spare) return;
    spare->Clear();
    set(spare.release());
  };
  switch (kind) {
    case WRIT_EV_OPEN:
    case WRIT_EV_LINK:
      reuse(spare_file_, [ev](v1::File* f) { ev->set_allocated_file(f); });
      break;
    case WRIT_EV_CONNECT:
      reuse(spare_network_, [ev](v1::Network* n) { ev->set_allocated_network(n); });
      break;
    case WRIT_EV_SELF:
      reuse(spare_syscall_, [ev](v1::Syscall* s) { ev->set_allocated_syscall(s); });
      break;
    default:
      break;
  }
}

Decoder::Decoder(int64_t boot_to_unix_ns, std::string boot_tag)
    : boot_to_unix_ns_(boot_to_unix_ns), boot_tag_(std::move(boot_tag)) {}

absl::Status Decoder::Decode(const void* data, size_t size, v1::Event* ev, RecordInfo* info) {
  if (size < sizeof(writ_event_hdr)) {
    stats_.bad_size++;
    return absl::DataLossError(absl::StrCat("record of ", size, " bytes is shorter than a header"));
  }
  writ_event_hdr h;
  std::memcpy(&h, data, sizeof(h));
  if (h.abi_version != WRIT_ABI_VERSION) {
    stats_.bad_version++;
    return absl::DataLossError(
        absl::StrCat("record ABI version ", h.abi_version, ", expected ", WRIT_ABI_VERSION));
  }
  if (h.size > size) {
    stats_.bad_size++;
    return absl::DataLossError(absl::StrCat("record claims ", h.size, " bytes, has ", size));
  }
  size_t need = 0;
  switch (h.kind) {
    case WRIT_EV_EXEC:
      need = offsetof(writ_exec_event, args);
      break;
    case WRIT_EV_FORK:
      need = sizeof(writ_fork_event);
      break;
    case WRIT_EV_EXIT:
      need = sizeof(writ_exit_event);
      break;
    case WRIT_EV_OPEN:
      need = offsetof(writ_open_event, path);
      break;
    case WRIT_EV_CONNECT:
      need = sizeof(writ_connect_event);
      break;
    case WRIT_EV_SELF:
      need = sizeof(writ_self_event);
      break;
    case WRIT_EV_LINK:
      need = offsetof(writ_link_event, data);
      break;
    default:
      stats_.bad_kind++;
      return absl::DataLossError(absl::StrCat("unknown record kind ", h.kind));
  }
  if (size < need) {
    stats_.bad_size++;
    return absl::DataLossError(
        absl::StrCat(KindName(h.kind), " record of ", size, " bytes, needs ", need));
  }

  ClearForRecord(h.kind, ev);
  *info = RecordInfo{};
  info->kind = static_cast<EventKind>(h.kind);  // checked above: one of the kinds a record can have
  info->needs_verdict = (h.flags & WRIT_F_NEEDS_VERDICT) != 0;
  info->kernel_denied = (h.flags & WRIT_F_KERNEL_DENY) != 0;
  info->kernel_stopped = (h.flags & WRIT_F_KERNEL_STOP) != 0;
  info->lsm = (h.flags & WRIT_F_LSM) != 0;
  info->seccomp = (h.flags & WRIT_F_SECCOMP) != 0;
  info->script = (h.flags & WRIT_F_SCRIPT) != 0;
  info->loader = (h.flags & WRIT_F_LOADER) != 0;
  info->path_truncated = (h.flags & WRIT_F_PATH_TRUNC) != 0;
  info->cgroup_id = h.cgroup_id;
  info->start_time_ns = h.start_time_ns;
  info->tgid = h.tgid;
  info->slot = h.task_slot;
  info->ktime_ns = h.ktime_ns;
  // "<boot tag>-<ktime hex>-<tid hex>", formatted by hand: snprintf cost more than the rest of
  // Decode.
  {
    std::string* id = ev->mutable_id();
    id->append(boot_tag_);
    char hex[40];
    char* q = hex;
    *q++ = '-';
    q = std::to_chars(q, hex + sizeof(hex), h.ktime_ns, 16).ptr;
    *q++ = '-';
    q = std::to_chars(q, hex + sizeof(hex), h.pid, 16).ptr;
    id->append(hex, static_cast<size_t>(q - hex));
  }
  std::string* t = ev->mutable_time();
  // ktime_ns comes from the record: a corrupt one must not overflow (UB) into the timestamp.
  int64_t unix_ns;
  if (__builtin_add_overflow(static_cast<int64_t>(h.ktime_ns & INT64_MAX), boot_to_unix_ns_,
                             &unix_ns)) {
    unix_ns = INT64_MAX;
  }
  AppendRfc3339Nanos(unix_ns, t);
  ev->set_ktime_ns(h.ktime_ns);
  ev->set_kind(KindName(h.kind));

  v1::Process* p = ev->mutable_process();
  p->set_pid(h.tgid);
  p->set_tid(h.pid);
  p->set_ppid(h.ppid);
  p->set_uid(h.uid);
  p->set_gid(h.gid);
  p->set_start_time_ns(h.start_time_ns);
  AssignCStr(h.comm, sizeof(h.comm), p->mutable_comm());

  const char* base = static_cast<const char*>(data);
  switch (h.kind) {
    case WRIT_EV_EXEC: {
      const auto* e = reinterpret_cast<const writ_exec_event*>(base);
      info->kernel_verdict = e->verdict;
      size_t plen = std::min<size_t>(e->path_len, WRIT_PATH_MAX);
      ComponentsToPath(e->path, plen, p->mutable_exe());
      AssignCStr(e->filename, std::min<size_t>(e->filename_len, WRIT_NAME_MAX),
                 p->mutable_filename());
      size_t alen = std::min<size_t>(e->args_len, WRIT_ARGS_MAX);
      alen = std::min(alen, size - offsetof(writ_exec_event, args));
      bool trunc = (h.flags & WRIT_F_ARGS_TRUNC) != 0;
      size_t i = 0;
      while (i < alen) {
        size_t len = strnlen(e->args + i, alen - i);
        if (p->args_size() >= WRIT_ARGC_MAX) {
          trunc = true;
          break;
        }
        // An argument longer than WRIT_NAME_MAX is cut: the record keeps the first bytes only.
        if (len > WRIT_NAME_MAX) {
          p->add_args()->assign(e->args + i, WRIT_NAME_MAX);
          trunc = true;
        } else {
          p->add_args()->assign(e->args + i, len);
        }
        i += len + 1;
      }
      p->set_args_truncated(trunc);
      break;
    }
    case WRIT_EV_FORK: {
      const auto* e = reinterpret_cast<const writ_fork_event*>(base);
      p->set_ppid(e->parent_tgid);
      break;
    }
    case WRIT_EV_EXIT: {
      const auto* e = reinterpret_cast<const writ_exit_event*>(base);
      int status = e->exit_code;
      int sig = status & 0x7f;
      if (sig) {
        p->set_exit_signal(sig);
        p->set_exit_code(128 + sig);
      } else {
        p->set_exit_code((status >> 8) & 0xff);
      }
      break;
    }
    case WRIT_EV_OPEN: {
      const auto* e = reinterpret_cast<const writ_open_event*>(base);
      v1::File* f = ev->mutable_file();
      size_t plen = std::min<size_t>(e->path_len, WRIT_PATH_MAX);
      plen = std::min(plen, size - offsetof(writ_open_event, path));
      if (h.flags & WRIT_F_UNRESOLVED) {
        AssignCStr(e->path, plen, f->mutable_path());
        f->set_unresolved(true);
      } else {
        ComponentsToPath(e->path, plen, f->mutable_path());
      }
      f->set_truncated((h.flags & WRIT_F_PATH_TRUNC) != 0);
      AppendOpenFlags(e->open_flags, f->mutable_flags());
      f->set_result(e->result < 0 ? e->result : 0);
      f->set_raw_flags(e->open_flags);
      f->set_syscall(SyscallName(e->syscall_nr));
      f->set_inode(e->ino);
      f->set_dev(e->dev);
      break;
    }
    case WRIT_EV_CONNECT: {
      const auto* e = reinterpret_cast<const writ_connect_event*>(base);
      info->kernel_verdict = e->verdict;
      v1::Network* net = ev->mutable_network();
      net->set_result(e->result);
      net->set_hook((h.flags & WRIT_F_CGROUP_HOOK)               ? "cgroup"
                    : (h.flags & (WRIT_F_LSM_HOOK | WRIT_F_LSM)) ? "lsm"
                                                                 : "syscall");
      net->set_send((h.flags & WRIT_F_SEND) != 0);
      net->set_suppressed(e->suppressed);
      if (e->family == AF_UNIX) {
        if (size < offsetof(writ_unix_connect_event, peer)) {
          stats_.bad_size++;
          return absl::DataLossError(absl::StrCat("unix connect record of ", size, " bytes"));
        }
        const auto* u = reinterpret_cast<const writ_unix_connect_event*>(base);
        net->set_family("unix");
        const size_t nlen = std::min<size_t>(u->name_len, WRIT_UNIX_NAME_MAX);
        std::string* path = net->mutable_path();
        if (nlen > 0 && u->name[0] == '\0') {
          path->assign("@");  // an abstract name: every byte after the NUL is the name
          path->append(u->name + 1, nlen - 1);
        } else {
          AssignCStr(u->name, nlen, path);
        }
        size_t plen = std::min<size_t>(u->peer_len, WRIT_PATH_MAX);
        plen = std::min(plen, size - offsetof(writ_unix_connect_event, peer));
        if (plen > 0) ComponentsToPath(u->peer, plen, net->mutable_peer_path());
        break;
      }
      char ip[INET6_ADDRSTRLEN] = {};
      if (e->family == AF_INET) {
        net->set_family("inet");
        inet_ntop(AF_INET, e->addr, ip, sizeof(ip));
      } else {
        net->set_family("inet6");
        inet_ntop(AF_INET6, e->addr, ip, sizeof(ip));
      }
      net->set_dst_ip(ip);
      net->set_dst_port(e->port);
      break;
    }
    case WRIT_EV_LINK: {
      const auto* e = reinterpret_cast<const writ_link_event*>(base);
      v1::File* f = ev->mutable_file();
      const size_t avail = size - offsetof(writ_link_event, data);
      const size_t olen = std::min<size_t>({e->old_len, WRIT_PATH_MAX, avail});
      const size_t nlen = std::min<size_t>({e->new_len, WRIT_PATH_MAX, avail - olen});
      const char* old_p = e->data;
      const char* new_p = e->data + olen;
      std::string* newp = f->mutable_new_path();
      if (e->link_flags & WRIT_LINK_NEW_RAW) {
        AssignCStr(new_p, nlen, newp);
        if (newp->empty() || (*newp)[0] != '/') f->set_unresolved(true);
      } else {
        ComponentsToPath(new_p, nlen, newp);
      }
      std::string* oldp = f->mutable_path();
      if (e->link_flags & WRIT_LINK_OLD_RAW) {
        const size_t raw = strnlen(old_p, olen);
        const bool symlink = e->syscall_nr == 88 || e->syscall_nr == 266;
        if (symlink && raw > 0 && old_p[0] != '/' && !newp->empty() && (*newp)[0] == '/') {
          // A symlink's relative content points from the link's own directory.
          const size_t slash = newp->rfind('/');
          LexicalJoin(std::string_view(*newp).substr(0, slash == 0 ? 1 : slash),
                      std::string_view(old_p, raw), oldp);
        } else {
          oldp->assign(old_p, raw);
          if (raw == 0 || old_p[0] != '/') f->set_unresolved(true);
        }
      } else {
        ComponentsToPath(old_p, olen, oldp);
      }
      f->set_syscall(LinkSyscallName(e->syscall_nr));
      f->set_raw_flags(e->call_flags);
      break;
    }
    case WRIT_EV_SELF: {
      const auto* e = reinterpret_cast<const writ_self_event*>(base);
      v1::Syscall* sc = ev->mutable_syscall();
      sc->set_name(SelfSyscallName(e->syscall_nr));
      sc->set_result(e->result);
      sc->set_target(SelfTargetName(e->target));
      sc->set_target_pid(e->target_pid);
      sc->add_args(e->args[0]);
      sc->add_args(e->args[1]);
      sc->add_args(e->args[2]);
      break;
    }
  }
  stats_.decoded++;
  return absl::OkStatus();
}

bool IsAdoptRecord(const void* data, size_t size) {
  if (size < sizeof(writ_event_hdr)) return false;
  writ_event_hdr h;
  std::memcpy(&h, data, sizeof(h));
  return h.kind == WRIT_EV_ADOPT;
}

absl::Status DecodeAdopt(const void* data, size_t size, AdoptRecord* out) {
  if (size < sizeof(writ_adopt_event)) {
    return absl::DataLossError(
        absl::StrCat("adopt record of ", size, " bytes, needs ", sizeof(writ_adopt_event)));
  }
  writ_adopt_event e;
  std::memcpy(&e, data, sizeof(e));
  if (e.hdr.abi_version != WRIT_ABI_VERSION) {
    return absl::DataLossError(
        absl::StrCat("record ABI version ", e.hdr.abi_version, ", expected ", WRIT_ABI_VERSION));
  }
  out->tgid = e.hdr.tgid;
  out->ppid = e.hdr.ppid;
  out->uid = e.hdr.uid;
  out->gid = e.hdr.gid;
  out->start_time_ns = e.hdr.start_time_ns;
  out->ktime_ns = e.hdr.ktime_ns;
  out->cgroup_id = e.hdr.cgroup_id;
  out->stopped = (e.hdr.flags & WRIT_F_KERNEL_STOP) != 0;
  out->match = e.match;
  out->path_hash = e.path_hash;
  out->comm.assign(e.hdr.comm, strnlen(e.hdr.comm, sizeof(e.hdr.comm)));
  return absl::OkStatus();
}

}  // namespace writ::decode
