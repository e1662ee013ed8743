#include "actions/self_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "util/status_macros.h"

namespace writ::actions {

namespace {

constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kNoSys = SECCOMP_RET_ERRNO | ENOSYS;
constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kX32Bit = 0x40000000;

sock_filter Stmt(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return BPF_JUMP(code, k, jt, jf);
}
// Loads the low 32 bits of argument i (x86_64 is little-endian; the kernel reads pids as int).
sock_filter LoadArgLow(int i) {
  return Stmt(BPF_LD | BPF_W | BPF_ABS,
              static_cast<uint32_t>(offsetof(seccomp_data, args) + 8 * i));
}
// if (A == k) return ret;
void ReturnIfEq(std::vector<sock_filter>* p, uint32_t k, uint32_t ret) {
  p->push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
  p->push_back(Stmt(BPF_RET | BPF_K, ret));
}
// if (nr in nrs) run block (which ends in a return); else skip it.
void IfSyscall(std::vector<sock_filter>* p, const std::vector<uint32_t>& nrs,
               const std::vector<sock_filter>& block) {
  // jeq nr_i -> the block, which starts after the remaining jeqs and the JA.
  for (size_t i = 0; i < nrs.size(); i++) {
    p->push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, nrs[i], static_cast<uint8_t>(nrs.size() - i), 0));
  }
  p->push_back(Stmt(BPF_JMP | BPF_JA, static_cast<uint32_t>(block.size())));
  p->insert(p->end(), block.begin(), block.end());
}

}  // namespace

std::vector<sock_filter> BuildSelfFilter(const SelfFilterSpec& spec) {
  return BuildSelfFilter(spec, false);
}

std::vector<sock_filter> BuildSelfFilter(const SelfFilterSpec& spec, bool own_group_protected) {
  std::vector<sock_filter> p;
  // Only the native ABI: an i386 (int 0x80) or x32 syscall would carry other numbers.
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  p.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  p.push_back(Stmt(BPF_RET | BPF_K, kDeny));
  p.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  p.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, kX32Bit, 0, 1));
  p.push_back(Stmt(BPF_RET | BPF_K, kDeny));
  for (uint32_t nr : {SYS_bpf, SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
                      SYS_process_vm_readv, SYS_process_vm_writev, SYS_pidfd_getfd, SYS_init_module,
                      SYS_finit_module, SYS_kexec_load, SYS_kexec_file_load}) {
    ReturnIfEq(&p, nr, kDeny);
  }
  ReturnIfEq(&p, SYS_pidfd_send_signal, kNoSys);

  std::vector<sock_filter> pid_checks;  // A holds a pid: deny a protected one, else allow
  for (uint32_t pid : spec.pids) ReturnIfEq(&pid_checks, pid, kDeny);
  pid_checks.push_back(Stmt(BPF_RET | BPF_K, kAllow));

  std::vector<sock_filter> ptrace_block = {LoadArgLow(0)};
  ReturnIfEq(&ptrace_block, PTRACE_ATTACH, kDeny);
  ReturnIfEq(&ptrace_block, PTRACE_SEIZE, kDeny);
  ptrace_block.push_back(LoadArgLow(1));
  ptrace_block.insert(ptrace_block.end(), pid_checks.begin(), pid_checks.end());
  IfSyscall(&p, {SYS_ptrace}, ptrace_block);

  std::vector<sock_filter> group_checks;  // A holds a signal owner: deny minus a protected group
  for (uint32_t g : spec.groups) {
    ReturnIfEq(&group_checks, static_cast<uint32_t>(-static_cast<int32_t>(g)), kDeny);
  }

  // Signal ownership: the kernel signals a file's owner (F_SETSIG: any signal, SIGKILL too) when
  // the file becomes ready. F_SETOWN names the owner in its argument; F_SETOWN_EX, FIOSETOWN and
  // SIOCSPGRP behind a pointer this filter cannot read: refused outright.
  std::vector<sock_filter> fcntl_block = {LoadArgLow(1)};
  ReturnIfEq(&fcntl_block, F_SETOWN_EX, kDeny);
  fcntl_block.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, F_SETOWN, 1, 0));
  fcntl_block.push_back(Stmt(BPF_RET | BPF_K, kAllow));
  fcntl_block.push_back(LoadArgLow(2));
  fcntl_block.insert(fcntl_block.end(), group_checks.begin(), group_checks.end());
  fcntl_block.insert(fcntl_block.end(), pid_checks.begin(), pid_checks.end());
  IfSyscall(&p, {SYS_fcntl}, fcntl_block);

  // Joining a protected group would make kill(0) signal writd.
  std::vector<sock_filter> setpgid_block = {LoadArgLow(1)};
  for (uint32_t g : spec.groups) ReturnIfEq(&setpgid_block, g, kDeny);
  setpgid_block.push_back(Stmt(BPF_RET | BPF_K, kAllow));
  IfSyscall(&p, {SYS_setpgid}, setpgid_block);

  std::vector<sock_filter> ioctl_block = {LoadArgLow(1)};
  ReturnIfEq(&ioctl_block, FIOSETOWN, kDeny);
  ReturnIfEq(&ioctl_block, SIOCSPGRP, kDeny);
  ioctl_block.push_back(Stmt(BPF_RET | BPF_K, kAllow));
  IfSyscall(&p, {SYS_ioctl}, ioctl_block);

  std::vector<sock_filter> kill_block = {LoadArgLow(0)};
  ReturnIfEq(&kill_block, static_cast<uint32_t>(-1), kDeny);
  // kill(0, ...) signals the caller's own group: refused when that is a protected one.
  if (own_group_protected) ReturnIfEq(&kill_block, 0, kDeny);
  for (uint32_t g : spec.groups)
    ReturnIfEq(&kill_block, static_cast<uint32_t>(-static_cast<int32_t>(g)), kDeny);
  kill_block.insert(kill_block.end(), pid_checks.begin(), pid_checks.end());
  IfSyscall(&p, {SYS_kill}, kill_block);

  std::vector<sock_filter> pid_block = {LoadArgLow(0)};
  pid_block.insert(pid_block.end(), pid_checks.begin(), pid_checks.end());
  IfSyscall(&p, {SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_pidfd_open},
            pid_block);
  p.push_back(Stmt(BPF_RET | BPF_K, kAllow));
  return p;
}

absl::Status InstallSelfFilter(const SelfFilterSpec& spec) {
  // A process group is inherited across exec and left only by setsid/setpgid: if the task starts in
  // a protected group, kill(0) would signal writd.
  const uint32_t own = static_cast<uint32_t>(getpgrp());
  const bool own_group_protected =
      std::find(spec.groups.begin(), spec.groups.end(), own) != spec.groups.end();
  std::vector<sock_filter> prog = BuildSelfFilter(spec, own_group_protected);
  if (prog.size() > BPF_MAXINSNS) {
    return absl::InvalidArgumentError("self-protection filter: too many protected pids");
  }
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0) return absl::OkStatus();
  if (errno != EACCES) return ErrnoStatus(errno, "install the self-protection seccomp filter");
  // Without CAP_SYS_ADMIN the kernel requires no_new_privs (setuid binaries gain nothing in the
  // task).
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return ErrnoStatus(errno, "set no_new_privs");
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
    return ErrnoStatus(errno, "install the self-protection seccomp filter");
  }
  return absl::OkStatus();
}

std::string EncodeSelfFilterSpec(const SelfFilterSpec& spec) {
  const uint32_t counts[2] = {static_cast<uint32_t>(spec.pids.size()),
                              static_cast<uint32_t>(spec.groups.size())};
  std::string out(reinterpret_cast<const char*>(counts), sizeof(counts));
  for (uint32_t v : spec.pids) out.append(reinterpret_cast<const char*>(&v), sizeof(v));
  for (uint32_t v : spec.groups) out.append(reinterpret_cast<const char*>(&v), sizeof(v));
  return out;
}

bool DecodeSelfFilterSpec(absl::string_view bytes, SelfFilterSpec* spec) {
  uint32_t counts[2];
  if (bytes.size() < sizeof(counts)) return false;
  memcpy(counts, bytes.data(), sizeof(counts));
  if (bytes.size() != sizeof(counts) + sizeof(uint32_t) * (uint64_t{counts[0]} + counts[1]))
    return false;
  size_t off = sizeof(counts);
  for (int l = 0; l < 2; l++) {
    std::vector<uint32_t>& list = l == 0 ? spec->pids : spec->groups;
    for (uint32_t i = 0; i < counts[l]; i++, off += sizeof(uint32_t)) {
      uint32_t v;
      memcpy(&v, bytes.data() + off, sizeof(v));
      list.push_back(v);
    }
  }
  return true;
}

}  // namespace writ::actions
