// The launcher's self-protection seccomp filter, installed for real in a forked child (no root
// needed: the child sets no_new_privs). Each syscall's errno is what an agent would see.
#include "actions/self_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include "gtest/gtest.h"

namespace writ::actions {
namespace {

// Runs fn in a child with the filter installed; returns what it wrote to the pipe.
std::string InChild(const SelfFilterSpec& spec, const std::function<std::string()>& fn) {
  int p[2];
  if (pipe(p) != 0) return "pipe";
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    absl::Status st = InstallSelfFilter(spec);
    std::string out = st.ok() ? fn() : "install: " + std::string(st.message());
    (void)!write(p[1], out.data(), out.size());
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out;
}

std::string Errno(long rc) { return rc < 0 ? strerrorname_np(errno) : "ok"; }

TEST(SelfFilter, RefusesSignalsAndTracingOfProtectedPidsOnly) {
  pid_t parent = getpid();
  SelfFilterSpec spec{{static_cast<uint32_t>(parent)}, {static_cast<uint32_t>(parent)}};
  std::string out = InChild(spec, [&] {
    std::string r;
    r += "kill=" + Errno(kill(parent, 0));
    // Upper 32 bits set: the kernel reads an int, so must the filter.
    r += " kill64=" + Errno(syscall(SYS_kill, (1L << 32) | parent, 0));
    r += " killall=" + Errno(kill(-1, 0));
    r += " killgroup=" + Errno(kill(-parent, 0));
    r += " tgkill=" + Errno(syscall(SYS_tgkill, parent, parent, 0));
    r += " tkill=" + Errno(syscall(SYS_tkill, parent, 0));
    r += " sigqueue=" + Errno(syscall(SYS_rt_sigqueueinfo, parent, 0, nullptr));
    r += " pidfd_open=" + Errno(syscall(SYS_pidfd_open, parent, 0));
    r += " ptrace=" + Errno(ptrace(PTRACE_INTERRUPT, parent, 0, 0));
    r += " self=" + Errno(kill(getpid(), 0));
    r += " other=" + Errno(kill(0x7ffffff0, 0));  // above PID_MAX_LIMIT: the kernel's own ESRCH
    return r;
  });
  EXPECT_EQ(out,
            "kill=EPERM kill64=EPERM killall=EPERM killgroup=EPERM tgkill=EPERM tkill=EPERM "
            "sigqueue=EPERM pidfd_open=EPERM ptrace=EPERM self=ok other=ESRCH");
}

TEST(SelfFilter, RefusesBpfIoUringAttachAndProcessMemoryAlways) {
  std::string out = InChild({}, [] {
    std::string r;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    r += "bpf=" + Errno(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));
    io_uring_params params;
    memset(&params, 0, sizeof(params));
    r += " uring=" + Errno(syscall(SYS_io_uring_setup, 4, &params));
    r += " uring_enter=" + Errno(syscall(SYS_io_uring_enter, 0, 0, 0, 0, nullptr, 0));
    r += " attach=" + Errno(ptrace(PTRACE_ATTACH, 1, 0, 0));
    r += " seize=" + Errno(ptrace(PTRACE_SEIZE, 1, 0, 0));
    r += " vm_readv=" + Errno(syscall(SYS_process_vm_readv, 1, nullptr, 0, nullptr, 0, 0));
    r += " getfd=" + Errno(syscall(SYS_pidfd_getfd, 0, 0, 0));
    r += " pidfd_send=" + Errno(syscall(SYS_pidfd_send_signal, 0, 0, nullptr, 0));
    // Everything else is untouched.
    r += " getpid=" + Errno(syscall(SYS_getpid));
    return r;
  });
  EXPECT_EQ(out,
            "bpf=EPERM uring=EPERM uring_enter=EPERM attach=EPERM seize=EPERM vm_readv=EPERM "
            "getfd=EPERM pidfd_send=ENOSYS getpid=ok");
}

TEST(SelfFilter, ManyPidsStillFitAndWork) {
  SelfFilterSpec spec;
  for (uint32_t i = 0; i < 500; i++) spec.pids.push_back(100000 + i);
  pid_t parent = getpid();
  spec.pids.push_back(static_cast<uint32_t>(parent));  // beyond any 8-bit jump offset
  EXPECT_GT(BuildSelfFilter(spec).size(), 1000u);
  std::string out = InChild(spec, [&] { return "kill=" + Errno(kill(parent, 0)); });
  EXPECT_EQ(out, "kill=EPERM");
}

// `writ run` hands the spec to its child through a pipe: it must come back whole, or not at all.
TEST(SelfFilter, SpecEncodingRoundTripsAndRefusesAnythingButOneWholeSpec) {
  const SelfFilterSpec spec{{1, 42, 0xfffffff0u}, {7}};
  const std::string bytes = EncodeSelfFilterSpec(spec);
  SelfFilterSpec back;
  ASSERT_TRUE(DecodeSelfFilterSpec(bytes, &back));
  EXPECT_EQ(back.pids, spec.pids);
  EXPECT_EQ(back.groups, spec.groups);
  SelfFilterSpec empty;
  EXPECT_TRUE(DecodeSelfFilterSpec(EncodeSelfFilterSpec({}), &empty));
  EXPECT_TRUE(empty.pids.empty() && empty.groups.empty());
  for (size_t len = 0; len < bytes.size(); len++) {  // every truncation, e.g. a pid list cut short
    SelfFilterSpec part;
    EXPECT_FALSE(DecodeSelfFilterSpec(absl::string_view(bytes).substr(0, len), &part)) << len;
  }
  SelfFilterSpec extra;
  EXPECT_FALSE(DecodeSelfFilterSpec(bytes + "x", &extra));
}

// Signal ownership: with F_SETOWN(writd) + F_SETSIG(SIGKILL) + O_ASYNC, the kernel itself would
// SIGKILL writd once the file became ready. F_SETOWN of a protected pid or group is refused;
// F_SETOWN_EX, FIOSETOWN and SIOCSPGRP (the owner behind a pointer) always; joining a protected
// group too (kill(0) would then reach it). Everything else about fcntl and ioctl is untouched.
TEST(SelfFilter, RefusesSignalOwnershipOfProtectedPidsAndJoiningTheirGroup) {
  pid_t parent = getpid();
  SelfFilterSpec spec{{static_cast<uint32_t>(parent)}, {static_cast<uint32_t>(getpgrp())}};
  std::string out = InChild(spec, [&] {
    int p[2];
    if (pipe(p) != 0) return std::string("pipe");
    std::string r;
    r += "setown=" + Errno(fcntl(p[0], F_SETOWN, parent));
    r += " setown_group=" + Errno(fcntl(p[0], F_SETOWN, -getpgrp()));
    r += " setown_self=" + Errno(fcntl(p[0], F_SETOWN, getpid()));
    f_owner_ex own{F_OWNER_PID, getpid()};
    r += " setown_ex=" + Errno(fcntl(p[0], F_SETOWN_EX, &own));
    int self = getpid();
    r += " fiosetown=" + Errno(ioctl(p[0], FIOSETOWN, &self));
    r += " setsig=" + Errno(fcntl(p[0], F_SETSIG, SIGKILL));
    r += " getfl=" + Errno(fcntl(p[0], F_GETFL));
    r += " setpgid_protected=" + Errno(setpgid(0, static_cast<pid_t>(spec.groups[0])));
    r += " setpgid_own=" + Errno(setpgid(0, 0));
    return r;
  });
  EXPECT_EQ(out,
            "setown=EPERM setown_group=EPERM setown_self=ok setown_ex=EPERM fiosetown=EPERM "
            "setsig=ok getfl=ok setpgid_protected=EPERM setpgid_own=ok");
}

// Module loading and kexec reach into the kernel itself: refused whatever the arguments. The errno
// is the filter's EPERM, where the call itself would have given EBADF, EFAULT or ENOSYS (a kernel
// without module support) -- unless the caller lacks the capability, when the kernel's answer is
// EPERM too: then the program itself is checked (Evaluate below).
TEST(SelfFilter, RefusesModuleLoadingAndKexecAlways) {
  std::string out = InChild({}, [] {
    std::string r;
    r += "finit_module=" + Errno(syscall(SYS_finit_module, -1, "", 0));
    r += " init_module=" + Errno(syscall(SYS_init_module, nullptr, 0, ""));
    r += " kexec_load=" + Errno(syscall(SYS_kexec_load, 0, 0, nullptr, 0));
    r += " kexec_file_load=" + Errno(syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    return r;
  });
  EXPECT_EQ(out, "finit_module=EPERM init_module=EPERM kexec_load=EPERM kexec_file_load=EPERM");
}

// The program on its own, evaluated here (classic BPF, the instructions BuildSelfFilter emits): an
// answer independent of the caller's capabilities and of what the running kernel supports.
uint32_t Evaluate(const std::vector<sock_filter>& prog, uint32_t nr, std::vector<uint64_t> args) {
  seccomp_data d{};
  d.nr = static_cast<int>(nr);
  d.arch = AUDIT_ARCH_X86_64;
  for (size_t i = 0; i < args.size() && i < 6; i++) d.args[i] = args[i];
  uint32_t a = 0;
  for (size_t pc = 0; pc < prog.size();) {
    const sock_filter& f = prog[pc];
    switch (f.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        memcpy(&a, reinterpret_cast<const char*>(&d) + f.k, sizeof(a));
        pc++;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        pc += 1 + (a == f.k ? f.jt : f.jf);
        break;
      case BPF_JMP | BPF_JGE | BPF_K:
        pc += 1 + (a >= f.k ? f.jt : f.jf);
        break;
      case BPF_JMP | BPF_JA:
        pc += 1 + f.k;
        break;
      case BPF_RET | BPF_K:
        return f.k;
      default:
        ADD_FAILURE() << "instruction " << f.code << " not emulated";
        return 0;
    }
  }
  ADD_FAILURE() << "fell off the end";
  return 0;
}

TEST(SelfFilter, ProgramRefusesKernelLoadingAndKillOfItsOwnProtectedGroup) {
  const uint32_t deny = SECCOMP_RET_ERRNO | EPERM;
  const uint32_t allow = SECCOMP_RET_ALLOW;
  const SelfFilterSpec spec{{4242}, {4242}};
  const auto plain = BuildSelfFilter(spec);
  for (uint32_t nr : {SYS_init_module, SYS_finit_module, SYS_kexec_load, SYS_kexec_file_load}) {
    EXPECT_EQ(Evaluate(plain, nr, {}), deny) << nr;
  }
  EXPECT_EQ(Evaluate(plain, SYS_fcntl, {3, F_SETOWN, 4242}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_fcntl, {3, F_SETOWN, static_cast<uint32_t>(-4242)}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_fcntl, {3, F_SETOWN, (7ull << 32) | 4242}), deny);  // low 32 bits
  EXPECT_EQ(Evaluate(plain, SYS_fcntl, {3, F_SETOWN, 77}), allow);
  EXPECT_EQ(Evaluate(plain, SYS_fcntl, {3, F_SETOWN_EX, 0}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_fcntl, {3, F_GETFL, 0}), allow);
  EXPECT_EQ(Evaluate(plain, SYS_ioctl, {3, FIOSETOWN, 0}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_ioctl, {3, SIOCSPGRP, 0}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_ioctl, {3, TCGETS, 0}), allow);
  EXPECT_EQ(Evaluate(plain, SYS_setpgid, {0, 4242}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_setpgid, {0, 0}), allow);
  // kill(0) signals the caller's own group: refused only for a caller that is in a protected one.
  EXPECT_EQ(Evaluate(plain, SYS_kill, {0, 0}), allow);
  EXPECT_EQ(Evaluate(BuildSelfFilter(spec, /*own_group_protected=*/true), SYS_kill, {0, 9}), deny);
  EXPECT_EQ(Evaluate(plain, SYS_getpid, {}), allow);
}

// A task that starts inside a protected process group (a launcher without a session of its own):
// its kill(0) would signal writd's group.
TEST(SelfFilter, KillOfTheOwnGroupIsRefusedWhenThatGroupIsProtected) {
  SelfFilterSpec spec{{}, {static_cast<uint32_t>(getpgrp())}};
  std::string out = InChild(spec, [] { return "kill0=" + Errno(kill(0, 0)); });
  EXPECT_EQ(out, "kill0=EPERM");
  SelfFilterSpec other{{}, {0x7ffffff0}};
  out = InChild(other, [] { return "kill0=" + Errno(kill(0, 0)); });
  EXPECT_EQ(out, "kill0=ok");
}

}  // namespace
}  // namespace writ::actions
