// Builds ring-buffer records (include/writ/abi/events.h) the way the BPF side emits them, so
// decoder tests read as intent ("an exec of /usr/bin/curl by pid 42") instead of hex blobs. Sizes
// follow the kernel: exec records end at args + args_len, open records at path + path_len.
#pragma once

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "writ/abi/events.h"

namespace writ::testlib {

// "/usr/dir/file" -> "file\0dir\0usr\0" (leaf first, each component NUL-terminated); "/" -> "".
inline std::string LeafFirst(std::string_view abs) {
  std::vector<std::string_view> comps;
  size_t i = 0;
  while (i < abs.size()) {
    while (i < abs.size() && abs[i] == '/') i++;
    if (i >= abs.size()) break;
    size_t end = abs.find('/', i);
    if (end == std::string_view::npos) end = abs.size();
    comps.push_back(abs.substr(i, end - i));
    i = end;
  }
  std::string out;
  for (auto it = comps.rbegin(); it != comps.rend(); ++it) {
    out.append(*it);
    out.push_back('\0');
  }
  return out;
}

class RecordBuilder {
 public:
  static RecordBuilder Exec() { return RecordBuilder(WRIT_EV_EXEC, sizeof(writ_exec_event)); }
  static RecordBuilder Fork() { return RecordBuilder(WRIT_EV_FORK, sizeof(writ_fork_event)); }
  static RecordBuilder Exit() { return RecordBuilder(WRIT_EV_EXIT, sizeof(writ_exit_event)); }
  static RecordBuilder Open() { return RecordBuilder(WRIT_EV_OPEN, sizeof(writ_open_event)); }
  static RecordBuilder Self() { return RecordBuilder(WRIT_EV_SELF, sizeof(writ_self_event)); }
  // self: syscall number, result, target kind and pid, first three arguments.
  RecordBuilder& SelfCall(uint32_t nr, int32_t result, uint32_t target, uint32_t target_pid,
                          int64_t a0, int64_t a1, int64_t a2 = 0) {
    auto* e = as<writ_self_event>();
    e->syscall_nr = nr;
    e->result = result;
    e->target = target;
    e->target_pid = target_pid;
    e->args[0] = a0;
    e->args[1] = a1;
    e->args[2] = a2;
    return *this;
  }
  static RecordBuilder Connect() {
    return RecordBuilder(WRIT_EV_CONNECT, sizeof(writ_connect_event));
  }
  // A unix connect: the name as in sun_path ("@x" is written as an abstract name, a NUL then "x"),
  // and the socket file reached ("" for none).
  static RecordBuilder UnixConnect(std::string_view name, std::string_view peer = "") {
    RecordBuilder b(WRIT_EV_CONNECT, sizeof(writ_unix_connect_event));
    auto* e = b.as<writ_unix_connect_event>();
    e->c.family = AF_UNIX;
    std::string n(name);
    if (!n.empty() && n[0] == '@') {
      n[0] = '\0';
    } else {
      n.push_back('\0');
    }
    std::memcpy(e->name, n.data(), std::min<size_t>(n.size(), WRIT_UNIX_NAME_MAX));
    e->name_len = static_cast<uint32_t>(std::min<size_t>(n.size(), WRIT_UNIX_NAME_MAX));
    std::string lf = peer.empty() ? "" : LeafFirst(peer);
    std::memcpy(e->peer, lf.data(), lf.size());
    e->peer_len = static_cast<uint32_t>(lf.size());
    return b;
  }
  // A rename, link or symlink (syscall number): each name absolute (sent as components, as the
  // kernel resolves it) or, with raw, as passed.
  static RecordBuilder Link(uint32_t nr, std::string_view old_name, std::string_view new_name,
                            bool old_raw = false, bool new_raw = false) {
    RecordBuilder b(WRIT_EV_LINK, sizeof(writ_link_event));
    auto* e = b.as<writ_link_event>();
    e->syscall_nr = nr;
    auto seg = [](std::string_view n, bool raw) {
      if (!raw) return LeafFirst(n);
      std::string s(n);
      s.push_back('\0');
      return s;
    };
    const std::string o = seg(old_name, old_raw), n = seg(new_name, new_raw);
    std::memcpy(e->data, o.data(), o.size());
    std::memcpy(e->data + o.size(), n.data(), n.size());
    e->old_len = static_cast<uint32_t>(o.size());
    e->new_len = static_cast<uint32_t>(n.size());
    e->link_flags = (old_raw ? WRIT_LINK_OLD_RAW : 0) | (new_raw ? WRIT_LINK_NEW_RAW : 0);
    return b;
  }
  RecordBuilder& LinkFlags(uint32_t f) {
    as<writ_link_event>()->link_flags |= f;
    return *this;
  }
  RecordBuilder& Suppressed(uint32_t n) {
    as<writ_connect_event>()->suppressed = n;
    return *this;
  }

  // Header.
  RecordBuilder& Version(uint16_t v) {
    hdr()->abi_version = v;
    return *this;
  }
  RecordBuilder& Kind(uint16_t k) {
    hdr()->kind = k;
    return *this;
  }
  RecordBuilder& Pid(uint32_t tgid) {
    hdr()->tgid = tgid;
    hdr()->pid = tgid;
    return *this;
  }
  RecordBuilder& Tid(uint32_t tid) {
    hdr()->pid = tid;
    return *this;
  }
  RecordBuilder& Ppid(uint32_t ppid) {
    hdr()->ppid = ppid;
    return *this;
  }
  RecordBuilder& Uid(uint32_t uid) {
    hdr()->uid = uid;
    return *this;
  }
  RecordBuilder& Gid(uint32_t gid) {
    hdr()->gid = gid;
    return *this;
  }
  RecordBuilder& Cgroup(uint64_t id) {
    hdr()->cgroup_id = id;
    return *this;
  }
  RecordBuilder& Slot(uint32_t slot) {
    hdr()->task_slot = slot;
    return *this;
  }
  RecordBuilder& StartNs(uint64_t ns) {
    hdr()->start_time_ns = ns;
    return *this;
  }
  RecordBuilder& Ktime(uint64_t ns) {
    hdr()->ktime_ns = ns;
    return *this;
  }
  RecordBuilder& Flags(uint32_t f) {
    hdr()->flags |= f;
    return *this;
  }
  RecordBuilder& Comm(std::string_view c) {
    std::memset(hdr()->comm, 0, sizeof(hdr()->comm));
    std::memcpy(hdr()->comm, c.data(), std::min(c.size(), sizeof(hdr()->comm) - 1));
    return *this;
  }

  // exec
  RecordBuilder& Exe(std::string_view abs) { return ExeRaw(LeafFirst(abs)); }
  RecordBuilder& ExeRaw(const std::string& leaf_first) {
    auto* e = as<writ_exec_event>();
    std::memcpy(e->path, leaf_first.data(), leaf_first.size());
    e->path_len = static_cast<uint32_t>(leaf_first.size());
    return *this;
  }
  RecordBuilder& Filename(std::string_view f) {
    auto* e = as<writ_exec_event>();
    std::memcpy(e->filename, f.data(), f.size());
    e->filename[f.size()] = '\0';
    e->filename_len = static_cast<uint32_t>(f.size() + 1);
    return *this;
  }
  RecordBuilder& Args(const std::vector<std::string>& args) {
    std::string flat;
    for (const auto& a : args) {
      flat.append(a);
      flat.push_back('\0');
    }
    auto* e = as<writ_exec_event>();
    size_t n = std::min<size_t>(flat.size(), WRIT_ARGS_MAX);
    std::memcpy(e->args, flat.data(), n);
    e->args_len = static_cast<uint32_t>(n);
    return *this;
  }
  RecordBuilder& KernelVerdict(uint32_t v) {
    if (hdr()->kind == WRIT_EV_CONNECT) {
      as<writ_connect_event>()->verdict = v;
    } else {
      as<writ_exec_event>()->verdict = v;
    }
    return *this;
  }

  // fork
  RecordBuilder& Parent(uint32_t tgid, uint64_t start_ns) {
    auto* e = as<writ_fork_event>();
    e->parent_tgid = tgid;
    e->parent_start_time_ns = start_ns;
    return *this;
  }

  // exit: the wait(2) status, (code << 8) | termsig
  RecordBuilder& WaitStatus(int32_t status) {
    as<writ_exit_event>()->exit_code = status;
    return *this;
  }

  // open
  RecordBuilder& OpenPath(std::string_view abs) {
    std::string lf = LeafFirst(abs);
    auto* e = as<writ_open_event>();
    std::memcpy(e->path, lf.data(), lf.size());
    e->path_len = static_cast<uint32_t>(lf.size());
    return *this;
  }
  // The string as the caller passed it (failed open): NUL included, WRIT_F_UNRESOLVED set.
  RecordBuilder& UnresolvedPath(std::string_view s) {
    auto* e = as<writ_open_event>();
    std::memcpy(e->path, s.data(), s.size());
    e->path[s.size()] = '\0';
    e->path_len = static_cast<uint32_t>(s.size() + 1);
    return Flags(WRIT_F_UNRESOLVED);
  }
  RecordBuilder& OpenFlags(uint32_t f) {
    as<writ_open_event>()->open_flags = f;
    return *this;
  }
  // The opened file's identity (kernel device encoding).
  RecordBuilder& FileId(uint32_t dev, uint64_t ino) {
    auto* e = as<writ_open_event>();
    e->dev = dev;
    e->ino = ino;
    return *this;
  }
  RecordBuilder& Result(int32_t r) {
    if (hdr()->kind == WRIT_EV_CONNECT) {
      as<writ_connect_event>()->result = r;
    } else {
      as<writ_open_event>()->result = r;
    }
    return *this;
  }
  RecordBuilder& Syscall(uint32_t nr) {
    as<writ_open_event>()->syscall_nr = nr;
    return *this;
  }

  // connect
  RecordBuilder& Dst(const char* ip, uint16_t port) {
    auto* e = as<writ_connect_event>();
    e->family = std::strchr(ip, ':') ? AF_INET6 : AF_INET;
    inet_pton(e->family, ip, e->addr);
    e->port = port;
    return *this;
  }

  // The record as the kernel would emit it. size_override replaces the header's size field.
  std::vector<uint8_t> Build() const {
    std::vector<uint8_t> out = buf_;
    size_t size = buf_.size();
    const auto* h = reinterpret_cast<const writ_event_hdr*>(buf_.data());
    if (h->kind == WRIT_EV_EXEC && kind_ == WRIT_EV_EXEC) {
      size = offsetof(writ_exec_event, args) +
             reinterpret_cast<const writ_exec_event*>(buf_.data())->args_len;
    } else if (h->kind == WRIT_EV_OPEN && kind_ == WRIT_EV_OPEN) {
      size = offsetof(writ_open_event, path) +
             reinterpret_cast<const writ_open_event*>(buf_.data())->path_len;
    } else if (h->kind == WRIT_EV_CONNECT && buf_.size() == sizeof(writ_unix_connect_event)) {
      size = offsetof(writ_unix_connect_event, peer) +
             reinterpret_cast<const writ_unix_connect_event*>(buf_.data())->peer_len;
    } else if (h->kind == WRIT_EV_LINK && kind_ == WRIT_EV_LINK) {
      const auto* e = reinterpret_cast<const writ_link_event*>(buf_.data());
      size = offsetof(writ_link_event, data) + e->old_len + e->new_len;
    }
    out.resize(size);
    reinterpret_cast<writ_event_hdr*>(out.data())->size = static_cast<uint32_t>(size);
    return out;
  }

 private:
  RecordBuilder(uint16_t kind, size_t size) : kind_(kind), buf_(size, 0) {
    hdr()->abi_version = WRIT_ABI_VERSION;
    hdr()->kind = kind;
  }
  writ_event_hdr* hdr() { return reinterpret_cast<writ_event_hdr*>(buf_.data()); }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(buf_.data());
  }

  uint16_t kind_;
  std::vector<uint8_t> buf_;
};

}  // namespace writ::testlib
