// The launcher's self-protection seccomp filter, installed for real in a forked child (no root needed:
// the child sets no_new_privs). Each syscall's errno is what an agent would see.
#include "actions/self_filter.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <signal.h>
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

}  // namespace
}  // namespace writ::actions
