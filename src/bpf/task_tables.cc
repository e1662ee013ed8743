#include "bpf/task_tables.h"

#include <arpa/inet.h>
#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/time/time.h"
#include "bpf/path_hash.h"
#include "util/fd.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::bpf {

namespace {

// Does `outer`'s prefix contain `inner`'s?
bool Contains(const intent::KernelNetRule& outer, const intent::KernelNetRule& inner) {
  if (outer.family != inner.family || outer.prefix_len > inner.prefix_len) return false;
  int full = outer.prefix_len / 8, rem = outer.prefix_len % 8;
  if (memcmp(outer.addr, inner.addr, full) != 0) return false;
  if (rem == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rem));
  return (outer.addr[full] & mask) == (inner.addr[full] & mask);
}

// LPM returns only the longest matching prefix, so each prefix's entry carries the ranges of every
// rule whose prefix contains it: deny ranges first, then allow, first match wins.
absl::Status InstallNetRules(Loader& loader, uint32_t slot, const intent::KernelTables& kt) {
  for (const auto& key_rule : kt.net_rules) {
    writ_net_value val{};
    bool overflow = false;
    for (int pass = 0; pass < 2; pass++) {
      for (const auto& r : kt.net_rules) {
        if (r.deny != (pass == 0) || !Contains(r, key_rule)) continue;
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
      k.slot_be = htonl(slot);
      memcpy(k.addr, key_rule.addr, 4);
      RETURN_IF_ERROR(loader.SetNet4(k, val));
    } else {
      writ_net6_key k{};
      k.prefixlen = 32 + key_rule.prefix_len;
      k.slot_be = htonl(slot);
      memcpy(k.addr, key_rule.addr, 16);
      RETURN_IF_ERROR(loader.SetNet6(k, val));
    }
  }
  return absl::OkStatus();
}

absl::Status InstallTables(Loader& loader, uint32_t slot, const intent::KernelTables& kt) {
  if (kt.exec_judged) {
    // Exact paths the kernel can decide; an exe with an approval rule or a glob is stopped
    // (SIGSTOP) in enforce mode until userspace has judged its argv.
    for (const auto& p : kt.exec_allow_exact) {
      RETURN_IF_ERROR(loader.SetExecVerdict(slot, PathHash(p), WRIT_KV_ALLOW));
    }
    for (const auto& p : kt.exec_deny_exact) {
      RETURN_IF_ERROR(loader.SetExecVerdict(slot, PathHash(p), WRIT_KV_DENY));
    }
  }
  // Approval rules apply whether or not the intent has an exec: category.
  for (const auto& p : kt.exec_approval_exact) {
    RETURN_IF_ERROR(loader.SetExecVerdict(slot, PathHash(p), WRIT_KV_APPROVAL));
  }
  for (const auto* list : {&kt.file_deny_exact, &kt.file_deny_prefix}) {
    for (const auto& p : *list) RETURN_IF_ERROR(loader.SetFileDeny(slot, PathHash(p)));
  }
  for (const auto& [dev, ino] : kt.file_deny_ids) {
    RETURN_IF_ERROR(loader.SetFileDeny(slot, writ_file_id_hash(dev, ino), WRIT_PK_INODE));
  }
  for (const auto& name : kt.file_deny_leaf) {
    RETURN_IF_ERROR(loader.SetFileDeny(slot, ComponentHash(name), WRIT_PK_LEAF));
  }
  // "**/NAME/**" also matches the directory NAME itself: the name as the opened file's own
  // component too.
  for (const auto& name : kt.file_deny_any_component) {
    RETURN_IF_ERROR(loader.SetFileDeny(slot, ComponentHash(name), WRIT_PK_DIR));
    RETURN_IF_ERROR(loader.SetFileDeny(slot, ComponentHash(name), WRIT_PK_LEAF));
  }
  if (kt.net_judged) RETURN_IF_ERROR(InstallNetRules(loader, slot, kt));
  if (kt.unix_judged) {
    // Denies after allows: a name both lists hold is denied (deny beats allow), one entry per key.
    for (const auto& n : kt.unix_allow_exact) {
      RETURN_IF_ERROR(loader.SetUnixVerdict(slot, WRIT_UK_EXACT, UnixNameHash(n), WRIT_KV_ALLOW));
    }
    for (const auto& d : kt.unix_allow_prefix) {
      RETURN_IF_ERROR(loader.SetUnixVerdict(slot, WRIT_UK_PREFIX, UnixNameHash(d), WRIT_KV_ALLOW));
    }
    for (const auto& n : kt.unix_deny_exact) {
      RETURN_IF_ERROR(loader.SetUnixVerdict(slot, WRIT_UK_EXACT, UnixNameHash(n), WRIT_KV_DENY));
    }
    for (const auto& d : kt.unix_deny_prefix) {
      RETURN_IF_ERROR(loader.SetUnixVerdict(slot, WRIT_UK_PREFIX, UnixNameHash(d), WRIT_KV_DENY));
    }
  }
  return absl::OkStatus();
}

}  // namespace

writ_task_info TaskInfoFor(const identity::Task& task, const intent::KernelTables* kt) {
  writ_task_info info{};
  info.slot = task.slot;
  info.generation = static_cast<uint64_t>(absl::ToUnixNanos(task.start));
  const bool enforce = task.mode == identity::TaskMode::kEnforce;
  // Self-protection applies with or without an intent (threat-model.md, Self-protection).
  if (enforce) info.flags |= WRIT_TASK_SELF_KILL;
  if (!kt) return info;
  if (enforce) {
    info.flags |= WRIT_TASK_ENFORCE;
    // Userspace judges what the tables cannot: its verdicts must not wait for the batch timer.
    info.flags |= WRIT_TASK_PROMPT;
    const auto& resp = task.compiled->responses();
    if (std::find(resp.begin(), resp.end(), "kill") != resp.end())
      info.flags |= WRIT_TASK_KILL_LINEAGE;
  }
  if (kt->exec_judged && kt->exec_default_deny && !kt->exec_has_globs) {
    info.flags |= WRIT_TASK_EXEC_TABLE;
  }
  if (kt->exec_judged && kt->exec_has_globs) info.flags |= WRIT_TASK_EXEC_USER;
  if (kt->exec_script_judged) info.flags |= WRIT_TASK_EXEC_SCRIPT;
  if (kt->exec_any_judged) info.flags |= WRIT_TASK_EXEC_JUDGED;
  if (kt->file_deny_any) info.flags |= WRIT_TASK_FILE_LINK;
  if (kt->unix_judged) {
    info.flags |= WRIT_TASK_UNIX;
    if (kt->unix_default_deny) info.flags |= WRIT_TASK_UNIX_DENY;
    if (kt->unix_has_globs) info.flags |= WRIT_TASK_UNIX_USER;
  }
  if (kt->net_judged && kt->net_default_deny) info.flags |= WRIT_TASK_NET_TABLE;
  // The per-open path hash and prefix lookups only matter where the kernel acts on them.
  const bool file_comp = !kt->file_deny_leaf.empty() || !kt->file_deny_any_component.empty();
  if (enforce && (!kt->file_deny_exact.empty() || !kt->file_deny_prefix.empty() || file_comp)) {
    info.flags |= WRIT_TASK_FILE_TABLE;
    // Per-component hashing and lookups only for tasks that have component entries.
    if (file_comp) info.flags |= WRIT_TASK_FILE_COMP;
  }
  return info;
}

std::vector<DynamicLoader> HostDynamicLoaders(const std::string& root) {
  // Where distributions put them (glibc's ld-linux*, musl's ld-musl-*), and the interpreter writd
  // itself was loaded with; symlinks (/lib64/ld-linux-x86-64.so.2) resolve to the files they name.
  static constexpr const char* kPatterns[] = {
      "/lib64/ld-*.so*",     "/lib/ld-*.so*",       "/lib/*/ld-*.so*",   "/lib32/ld-*.so*",
      "/libx32/ld-*.so*",    "/usr/lib64/ld-*.so*", "/usr/lib/ld-*.so*", "/usr/lib/*/ld-*.so*",
      "/usr/lib32/ld-*.so*", "/usr/libx32/ld-*.so*"};
  std::vector<DynamicLoader> out;
  auto add = [&out](const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    const uint32_t kdev = static_cast<uint32_t>((major(st.st_dev) << 20) | minor(st.st_dev));
    for (const DynamicLoader& d : out) {
      if (d.dev == kdev && d.ino == st.st_ino) return;
    }
    char real[PATH_MAX];
    out.push_back(
        {realpath(path.c_str(), real) ? real : path, kdev, static_cast<uint64_t>(st.st_ino)});
  };
  for (const char* p : kPatterns) {
    glob_t g{};
    if (glob((root + p).c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; i++) add(g.gl_pathv[i]);
    }
    globfree(&g);
  }
  if (root.empty()) {
    if (auto interp = ElfInterpreter("/proc/self/exe"); !interp.empty()) add(interp);
  }
  return out;
}

std::string ElfInterpreter(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  Elf64_Ehdr eh;
  if (pread(fd.get(), &eh, sizeof(eh), 0) != sizeof(eh) ||
      memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr)) {
    return "";
  }
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    if (pread(fd.get(), &ph, sizeof(ph), eh.e_phoff + sizeof(ph) * i) != sizeof(ph)) return "";
    if (ph.p_type != PT_INTERP) continue;
    if (ph.p_filesz == 0 || ph.p_filesz > PATH_MAX) return "";
    std::string interp(ph.p_filesz, '\0');
    if (pread(fd.get(), interp.data(), interp.size(), ph.p_offset) !=
        static_cast<ssize_t>(interp.size())) {
      return "";
    }
    interp.resize(strnlen(interp.data(), interp.size()));
    return interp;
  }
  return "";
}

absl::Status ArmTask(Loader& loader, const identity::Task& task) {
  const bool judged = task.compiled && task.mode != identity::TaskMode::kRecord;
  intent::KernelTables kt;
  if (judged) {
    kt = task.compiled->kernel_tables();
    RETURN_IF_ERROR(InstallTables(loader, task.slot, kt));
    if (task.compiled->file_deny_ids_truncated()) {
      Logger("bpf")->warn(
          "task {}: intent {} denies more files than writ lists by identity ({}): hard links of "
          "the "
          "others are judged by their own names only",
          task.id, task.compiled->name(), task.compiled->file_deny_id_count());
    }
  }
  // The task map entry last: the tables it points the programs at exist before any record uses
  // them.
  return loader.AddTask(task.cgroup_id, TaskInfoFor(task, judged ? &kt : nullptr));
}

}  // namespace writ::bpf
