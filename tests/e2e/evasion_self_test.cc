// The agent as attacker against the host and writd itself.
// Fixture, attacker models and outcomes: evasion_fixture.h.
#include "evasion_fixture.h"

namespace writ::testlib::evasion {
namespace {

// ---- the host and writd itself
// ------------------------------------------------------------------------

// True when the kernel refuses an unprivileged bpf() before any LSM hook runs
// (kernel.unprivileged_bpf_disabled).
bool UnprivilegedBpfOff() {
  return ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled").value_or("1").substr(0, 1) != "0";
}

// What the kernel refuses an unprivileged agent by its own checks before any LSM hook runs (bpf()
// with unprivileged BPF off, ptrace of another user's process): on the LSM rung, where writ run
// installs no filter, that EPERM is the kernel's alone and nothing is reported; the task goes on.
void ExpectRefusedByTheKernelUnreported(const CmdResult& r, const std::vector<json>& evs,
                                        const std::string& what) {
  EXPECT_THAT(r.out, HasSubstr(what + " error Operation not permitted")) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("after"));
  for (const auto& e : evs) EXPECT_NE(e.value("kind", ""), "self") << e.dump();
}

// bpf() from a task (which could detach or override writ's programs): refused by the filter, or on
// the LSM rung by lsm/bpf.
TEST_P(Evasion, BpfSyscallIsPreventedAndTheTaskKilled) {
  CmdResult r = RunFiles(absl::StrCat(helper_, " bpf; sleep 5; echo after"));
  if (lsm_ && !root() && UnprivilegedBpfOff()) {
    ExpectRefusedByTheKernelUnreported(r, Events(r), "bpf");
    return;
  }
  ExpectSelfPrevented(r, Events(r), "bpf", "");
}

// Without the filter the bpf() call runs, but the caller is SIGKILLed at syscall entry and never
// sees the fd it created: outcome killed_after, the syscall's own result recorded (EPERM for the
// unprivileged agent: the kernel's own check). Where BPF-LSM loads, lsm/bpf refuses the call
// itself (outcome prevented, enforcement lsm); the caller is still killed at entry.
TEST_P(Evasion, BpfWithoutTheFilterKillsTheCallerAtEntry) {
  CmdResult r = Run(absl::StrCat(helper_, " bpf; sleep 5; echo after"),
                    {"--no-seccomp", "--intent", "e-files", "--param", "secret=" + secret_});
  if (lsm_ && !root() && UnprivilegedBpfOff()) {
    ExpectRefusedByTheKernelUnreported(r, Events(r), "bpf");
    return;
  }
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("bpf ok")));
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  auto evs = Events(r);
  json ev = Find(evs, [](const json& e) {
    return e.value("kind", "") == "self" && e["syscall"].value("name", "") == "bpf";
  });
  ASSERT_FALSE(ev.is_null());
  const bool unpriv_bpf_off = UnprivilegedBpfOff();
  if (lsm_) {
    EXPECT_EQ(ev["outcome"], "prevented");
    EXPECT_EQ(ev["enforcement"], "lsm");
    EXPECT_EQ(ev["syscall"].value("result", 0), -EPERM);
    return;
  }
  EXPECT_EQ(ev["outcome"], "killed_after");
  EXPECT_EQ(ev["enforcement"], "kernel-signal");
  if (root() || !unpriv_bpf_off) {
    EXPECT_GE(ev["syscall"].value("result", -1), 0);  // the map was created: the call did run
  } else {
    // Unprivileged BPF is off (kernel.unprivileged_bpf_disabled): the kernel refused the call.
    EXPECT_EQ(ev["syscall"].value("result", 0), -EPERM);
  }
}

// ptrace attach of a process outside the task (to drive it from there): refused whoever the target.
TEST_P(Evasion, PtraceOfAnotherProcessIsPrevented) {
  pid_t victim = fork();
  if (victim == 0) {
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(victim, 0);
  CmdResult r = RunFiles(absl::StrCat(helper_, " ptrace ", victim, "; sleep 5; echo after"));
  if (lsm_ && !root()) {
    // Another user's process: the kernel's own ptrace check refuses it before the LSM hooks.
    ExpectRefusedByTheKernelUnreported(r, Events(r), "ptrace");
  } else {
    json ev = ExpectSelfPrevented(r, Events(r), "ptrace", "process");
    if (!ev.is_null()) {
      EXPECT_EQ(ev["syscall"]["target_pid"], victim);
    }
  }
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
}

// Known limit of the root model, on both rungs: a root agent can move itself to the cgroup2 root by
// writing its pid to the root's cgroup.procs, and from there nothing it does is attributed to its
// task (every hook keys on the task cgroup). This test used to write /sys/fs/cgroup/cgroup.procs,
// which on this project's CI host is a tmpfs of cgroup v1 hierarchies (cgroup2 is at
// /sys/fs/cgroup/unified): the write created a regular file, the process never moved, and the test
// passed for the wrong reason. The VM tier, whose cgroup2 is at /sys/fs/cgroup, showed the escape.
// Now the write goes to the real cgroup2 root.
TEST_P(Evasion, LeavingTheTaskCgroupForTheRootEscapesAttributionKnownLimit) {
  const std::string cg_root = std::filesystem::path(writd_->cgroup_root()).parent_path().string();
  if (!root()) {
    // The unprivileged agent cannot write the root's cgroup.procs (root's, 0644): it stays in its
    // task, and the read that follows is killed like any other.
    ExpectSecretOpenKilled(RunFiles(
        absl::StrCat("echo $$ > ", cg_root, "/cgroup.procs; cat ", secret_, "/key; echo after")));
    return;
  }
  CmdResult r = RunFiles(
      absl::StrCat("echo $$ > ", cg_root, "/cgroup.procs && cat ", secret_, "/key; echo after"));
  EXPECT_EQ(r.exit_code, 0) << "limit changed, update docs/threat-model.md: " << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("TOPSECRET"));
  auto evs = Events(r);
  EXPECT_TRUE(OpenOf(evs, secret_ + "/key").is_null()) << "the open was attributed after all";
}

// Writing a policy file from inside a task: denied like any file once an intent denies writd's
// directories; and a control-API reload from inside a task must not loosen the running task.
TEST_P(Evasion, WritingThePoliciesDirIsJudgedLikeAnyFile) {
  const std::string pol = RealPath(writd_->policies_dir());
  CmdResult r = Run(absl::StrCat("echo x > ", pol, "/evil.yaml; echo after"),
                    {"--intent", "e-files", "--param", "secret=" + pol});
  // Judged like any file: a violation either way. The root agent's open succeeds and it is killed;
  // the unprivileged agent is killed too where the directory lets it write, and otherwise gets
  // EACCES from the kernel first (nothing is created, the shell goes on).
  if (root() || r.exit_code != 0) {
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  } else {
    EXPECT_FALSE(std::filesystem::exists(pol + "/evil.yaml"));
  }
  auto evs = Events(r);
  json ev = OpenOf(evs, pol + "/evil.yaml");
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["verdict"], "violation");
  std::filesystem::remove(pol + "/evil.yaml");
}

// Signal ownership handed to writd: F_SETOWN(writd) + F_SETSIG(SIGKILL) + O_ASYNC on a pipe, then a
// write, would have the kernel SIGKILL writd. F_SETOWN of a protected pid is refused by the
// launcher's filter, F_SETOWN_EX and FIOSETOWN (their owner behind a pointer) outright: writd
// lives, a self finding.
TEST_P(Evasion, SignalOwnershipAimedAtWritdIsPreventedAndWritdLives) {
  const pid_t pid = writd_->pid();
  for (const std::string how : {"fcntl", "ex", "ioctl"}) {
    SCOPED_TRACE(how);
    CmdResult r =
        RunFiles(absl::StrCat(helper_, " setown ", pid, " ", how, "; sleep 5; echo after"));
    ASSERT_TRUE(Alive(pid)) << "writd died";
    json ev = ExpectSelfPrevented(r, Events(r), how == "ioctl" ? "ioctl" : "fcntl", "writd");
    if (!ev.is_null()) {
      EXPECT_EQ(ev["syscall"]["target_pid"], pid);
      EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("writd"));
    }
  }
  EXPECT_EQ(writd_->Writ({"status"}).exit_code, 0);
}

// Without the filter the fallback SIGKILLs the caller at F_SETOWN's entry: the owner is set, but
// the caller never reaches F_SETSIG or the write, and its pipe dies with it. On the LSM rung
// lsm/file_fcntl refuses the F_SETOWN itself, and the finding's kill response ends the task.
TEST_P(Evasion, SignalOwnershipWithoutTheFilterKillsTheCallerFirst) {
  const pid_t pid = writd_->pid();
  CmdResult r = Run(absl::StrCat(helper_, " setown ", pid, "; sleep 5; echo after"),
                    {"--no-seccomp", "--intent", "e-files", "--param", "secret=" + secret_});
  ASSERT_TRUE(Alive(pid)) << "writd died";
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("setown ok")));
  json ev = Find(Events(r), [](const json& e) { return e.value("kind", "") == "self"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["syscall"]["name"], "fcntl");
  EXPECT_EQ(ev["syscall"]["target"], "writd");
  EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed_after");
}

// Joining writd's process group (kill(0) would then signal it) is refused and reported.
// On the LSM rung, where writ run installs no filter, the kernel's own check refuses it first (a
// process group of another session), before lsm/task_setpgid: refused, unreported.
TEST_P(Evasion, JoiningWritdsProcessGroupIsPrevented) {
  const pid_t pgid = getpgid(writd_->pid());
  CmdResult r = RunFiles(absl::StrCat(helper_, " setpgid ", pgid, "; sleep 5; echo after"));
  ASSERT_TRUE(Alive(writd_->pid())) << "writd died";
  if (lsm_) {
    ExpectRefusedByTheKernelUnreported(r, Events(r), "setpgid");
    return;
  }
  ExpectSelfPrevented(r, Events(r), "setpgid", "writd");
}

// Loading a kernel module (or a kernel to kexec into) from a task: refused by the filter. The
// finding needs the syscall's tracepoint, which a kernel without module (or kexec) support does not
// have.
TEST_P(Evasion, ModuleLoadingAndKexecAreRefused) {
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " finit-module; ", helper_, " kexec-file-load; echo after"));
  // `writ status` names each hook: "self (syscalls/sys_exit_finit_module)  active" or why not.
  const std::string status = writd_->Writ({"status"}).out;
  const size_t at = status.find("self (syscalls/sys_exit_finit_module)");
  ASSERT_NE(at, std::string::npos) << status;
  const std::string line = status.substr(at, status.find('\n', at) - at);
  const bool reported = absl::EndsWith(line, " active");
  if (lsm_) {
    // lsm/kernel_read_file refuses the module and the kexec image and reports it. The unprivileged
    // agent lacks CAP_SYS_MODULE: the kernel refuses it first, unreported.
    if (root()) {
      ExpectSelfPrevented(r, Events(r), "finit_module", "");
    } else {
      ExpectRefusedByTheKernelUnreported(r, Events(r), "finit-module");
    }
    return;
  }
  if (reported) {
    ExpectSelfPrevented(r, Events(r), "finit_module", "");
    return;
  }
  // Without the finding the task lives on: both calls got the filter's EPERM (ENOSYS or EBADF had
  // they run).
  EXPECT_THAT(r.out, HasSubstr("finit-module error Operation not permitted")) << r.err;
  EXPECT_THAT(r.out, HasSubstr("kexec-file-load error Operation not permitted"));
  GTEST_SKIP()
      << "refused (EPERM) but not reported: this kernel has no sys_exit_finit_module tracepoint "
         "(no module support), so there is nothing to hook";
}

// Signals, pidfds and tracing aimed at writd (any thread that existed when the task started), its
// guardian, and kill(-1): refused by the launcher's filter even for a root agent; writd lives on. A
// task without an intent gets the default response: kill.
TEST_F(EvasionStandalone, RootAgentCannotSignalOrTraceWritd) {
  const pid_t pid = w_.pid();
  int guardian = 0;
  std::ifstream(w_.dir() + "/run/guardian.pid") >> guardian;
  ASSERT_GT(guardian, 0);
  // The first thread writd started (a sink or the control acceptor: it lives as long as writd), not
  // a short-lived control-connection thread.
  pid_t thread = 0;
  for (pid_t tid : Threads(pid)) {
    if (tid != pid && (thread == 0 || tid < thread)) thread = tid;
  }
  ASSERT_GT(thread, 0) << "writd has no second thread?";
  struct Attempt {
    std::string args, syscall, target;
  };
  const std::vector<Attempt> attempts = {
      {absl::StrCat("kill ", pid, " 9"), "kill", "writd"},
      {absl::StrCat("kill ", thread, " 9"), "kill",
       "writd"},  // kill(2) of a thread id kills the process
      {absl::StrCat("tkill ", thread, " 9"), "tkill", "writd"},
      {absl::StrCat("kill ", guardian, " 9"), "kill", "guardian"},
      {"kill -1 0", "kill", "all"},  // signal 0: were the filter to fail, nothing would die
      {absl::StrCat("ptrace ", pid), "ptrace", "writd"},
      {absl::StrCat("pidfd ", pid), "pidfd_open", "writd"},
  };
  for (const Attempt& a : attempts) {
    SCOPED_TRACE(a.args);
    CmdResult r =
        w_.Writ({"run", "--agent", kAgent, "--allow-root", "--intent", "root-any", "--", "/bin/sh",
                 "-c", absl::StrCat(EVASION_HELPER, " ", a.args, "; sleep 5; echo after")});
    std::string task = TaskIdFrom(r.err);
    json end = w_.WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
    });
    ASSERT_FALSE(end.is_null()) << w_.log();
    if (!threads_ && a.args.find(absl::StrCat(" ", thread, " ")) != std::string::npos) {
      // Known limit of kernels < 6.2: refused (EPERM from the filter), unreported, the task lives
      // on.
      EXPECT_THAT(r.out, HasSubstr("error Operation not permitted")) << r.err;
      EXPECT_THAT(r.out, HasSubstr("after"));
      for (const auto& e : w_.TaskEvents(task)) EXPECT_NE(e.value("kind", ""), "self") << e.dump();
    } else {
      json ev = ExpectSelfPrevented(r, w_.TaskEvents(task), a.syscall, a.target);
      if (!ev.is_null() && a.target == "writd") {
        EXPECT_EQ(ev["syscall"]["target_pid"], pid);
      }
    }
    ASSERT_TRUE(Alive(pid)) << "writd died";
    ASSERT_EQ(kill(guardian, 0), 0) << "the guardian died";
  }
  EXPECT_EQ(w_.Writ({"status"}).exit_code, 0);
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

// A launcher inside writd's process group (a script that started writd and `writ run` without job
// control): the task still gets a session and process group of its own (DropPrivileges' setsid), so
// kill(0, SIGKILL) from it reaches its own processes only, with the filter and without it. Joining
// writd's group afterwards is refused (JoiningWritdsProcessGroupIsPrevented).
TEST_F(EvasionStandalone, KillOfTheOwnGroupNeverReachesWritdsGroup) {
  const pid_t pgid = getpgid(w_.pid());
  ASSERT_GT(pgid, 0);
  for (const bool filter : {true, false}) {
    std::vector<std::string> args = {"run",          "--agent",  kAgent,
                                     "--allow-root", "--intent", "root-any"};
    if (!filter) args.push_back("--no-seccomp");
    args.insert(args.end(),
                {"--", "/bin/sh", "-c",
                 absl::StrCat(EVASION_HELPER, " pgid; ", EVASION_HELPER, " kill 0 9; echo after")});
    CmdResult r = WritInGroup(w_, pgid, args);
    SCOPED_TRACE(filter ? "with the filter" : "without the filter");
    ASSERT_THAT(r.out, HasSubstr("pgid ")) << r.out << r.err;
    const pid_t task_pgid = std::atoi(r.out.substr(r.out.find("pgid ") + 5).c_str());
    EXPECT_GT(task_pgid, 0);
    EXPECT_NE(task_pgid, pgid) << "the task started in writd's process group";
    EXPECT_THAT(r.out, Not(HasSubstr("after")))
        << "kill(0, SIGKILL) did not reach the task's own group";
    const std::string task = TaskIdFrom(r.err);
    ASSERT_FALSE(w_.WaitForEvent([&](const json& e) {
                     return e.value("kind", "") == "task_end" &&
                            e["agent"].value("task_id", "") == task;
                   }).is_null());
    for (const auto& e : w_.TaskEvents(task)) EXPECT_NE(e.value("kind", ""), "self") << e.dump();
    ASSERT_TRUE(Alive(w_.pid())) << "writd died";
  }
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

// Known limit: the filter names writd's threads as they were when the task started. A thread writd
// starts later (here: the one serving a `writ tail` connection) is not in it, so tkill of it is not
// refused; the BPF fallback kills the caller at syscall entry (outcome killed_after). Signal 0
// here, so that writd survives the proof; with SIGKILL it would not (see the next test).
TEST_F(EvasionStandalone, WritdThreadStartedAfterTheTaskIsOnlyCoveredByTheFallbackKnownLimit) {
  const std::string d = w_.dir();
  pid_t run = w_.WritAsync(
      {"run", "--agent", kAgent, "--allow-root", "--intent", "root-any", "--", "/bin/sh", "-c",
       absl::StrCat("echo up > ", d, "/up; while [ ! -s ", d, "/tid ]; do sleep 0.05; done; ",
                    EVASION_HELPER, " tkill $(cat ", d, "/tid) 0; sleep 5; echo after")},
      "run");
  for (int i = 0; i < 200 && !std::filesystem::exists(d + "/up"); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(std::filesystem::exists(d + "/up")) << w_.log();
  const std::set<pid_t> at_start =
      Threads(w_.pid());  // a superset of what the placement reply named
  pid_t tail = w_.WritAsync({"tail"}, "tail");
  pid_t fresh = 0;
  for (int i = 0; i < 200 && !fresh; i++) {
    for (pid_t t : Threads(w_.pid())) {
      if (!at_start.count(t)) fresh = t;
    }
    if (!fresh) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(fresh, 0) << "writd started no thread for the tail connection";
  std::ofstream(d + "/tid.tmp") << fresh;
  std::filesystem::rename(d + "/tid.tmp", d + "/tid");
  CmdResult r = w_.WaitAsync(run, "run");
  const std::string task = TaskIdFrom(r.err);
  if (!threads_ && !lsm_) {
    // Kernels < 6.2 without BPF-LSM: the thread is not recognised as writd's at all; tkill(tid, 0)
    // runs, unreported.
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("tkill ok"));
    json end = w_.WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
    });
    ASSERT_FALSE(end.is_null()) << w_.log();
    for (const auto& e : w_.TaskEvents(task)) EXPECT_NE(e.value("kind", ""), "self") << e.dump();
    kill(tail, SIGTERM);
    (void)w_.WaitAsync(tail, "tail");
    EXPECT_EQ(w_.Stop(), 0) << w_.log();
    return;
  }
  // BPF-LSM: lsm/task_kill refuses a signal to any thread of writd, whatever the filter knows, and
  // the refusal is reported with the process it was aimed at (on 6.1 too, where the tracepoint
  // alone cannot tell a thread id of writd's). Elsewhere the fallback kills the caller at entry.
  if (!lsm_) {
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
  }
  EXPECT_THAT(r.out, Not(HasSubstr("tkill ok")));  // refused, or killed before it returned
  json ev = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "self" && e["agent"].value("task_id", "") == task;
  });
  ASSERT_FALSE(ev.is_null()) << w_.log();
  EXPECT_EQ(ev["syscall"]["name"], "tkill");
  EXPECT_EQ(ev["syscall"]["target"], "writd");
  EXPECT_EQ(ev["syscall"]["target_pid"], w_.pid());
  // Not refused on the tracepoint rung: limit changed? update docs/threat-model.md
  EXPECT_EQ(ev["syscall"]["result"], lsm_ ? -EPERM : 0);
  EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed_after");
  EXPECT_EQ(ev["enforcement"], lsm_ ? "lsm" : "kernel-signal");
  EXPECT_EQ(kill(w_.pid(), 0), 0);
  kill(tail, SIGTERM);
  (void)w_.WaitAsync(tail, "tail");
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

// Another process's memory through /proc/<pid>/mem: a root agent could write code into a process
// outside its task without a single ptrace call. Where BPF-LSM loads, lsm/ptrace_access_check
// refuses attach-mode access to any other process (the open fails with EACCES). Known limit of the
// tracepoint rung: the launcher's filter cannot see a path, so an intent that allows the open (this
// one allows everything) lets it through (docs/threat-model.md).
TEST_F(EvasionStandalone, ProcMemOfAProcessOutsideTheTaskIsRefusedOnTheLsmRungKnownLimitElsewhere) {
  pid_t victim = fork();
  if (victim == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(victim, 0);
  CmdResult r =
      w_.Writ({"run", "--agent", kAgent, "--allow-root", "--intent", "root-any", "--", "/bin/sh",
               "-c", absl::StrCat(EVASION_HELPER, " mem-open ", victim, "; sleep 5; echo after")});
  if (lsm_) {
    // ptrace_may_access refused: the open fails with EACCES, a self finding (aimed at another
    // process) ends the task.
    EXPECT_THAT(r.out, Not(HasSubstr("mem-open ok")));
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
    if (!r.out.empty()) {
      EXPECT_THAT(r.out, HasSubstr("mem-open error Permission denied"));
    }
    const std::string task = TaskIdFrom(r.err);
    json end = w_.WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
    });
    ASSERT_FALSE(end.is_null()) << w_.log();
    json ev;
    for (const auto& e : w_.TaskEvents(task)) {
      if (e.value("kind", "") == "self") ev = e;
    }
    ASSERT_FALSE(ev.is_null()) << "the refusal was not reported";
    EXPECT_EQ(ev["syscall"]["name"], "openat");
    EXPECT_EQ(ev["syscall"]["target"], "process");
    EXPECT_EQ(ev["syscall"]["target_pid"], victim);
    EXPECT_EQ(ev["outcome"], "prevented");
    EXPECT_EQ(ev["enforcement"], "lsm");
  } else {
    EXPECT_THAT(r.out, HasSubstr("after")) << r.err;
    EXPECT_THAT(r.out, HasSubstr("mem-open ok"))
        << "the limit changed: update docs/threat-model.md\n"
        << r.out << r.err;
  }
  EXPECT_EQ(kill(victim, 0), 0);
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

// Known limit of the tracepoint rung: a process without the filter (writ run --no-seccomp here; in
// general anything the launcher did not start) can still kill -9 writd, because a tracepoint cannot
// refuse a syscall. Where BPF-LSM loads, lsm/task_kill refuses it: writd lives and reports it.
// The caller is SIGKILLed at syscall entry, but the rest of the task is not (its kill response is
// writd's to run); in-kernel enforcement goes on (the guardian holds the programs), and the finding
// is reported by the next writd from the pinned ring buffer (outcome killed_after).
TEST_F(EvasionStandalone, WithoutTheFilterKillOfWritdIsAKnownLimitReportedAfterRestart) {
  const pid_t pid = w_.pid();
  CmdResult r = w_.Writ({"run", "--agent", kAgent, "--allow-root", "--intent", "root-any",
                         "--no-seccomp", "--", "/bin/sh", "-c",
                         absl::StrCat(EVASION_HELPER, " kill ", pid, " 9; echo after")});
  if (lsm_) {
    EXPECT_THAT(r.out, Not(HasSubstr("kill ok")));
    ASSERT_TRUE(Alive(pid)) << "writd died of a signal lsm/task_kill should have refused";
    const std::string task = TaskIdFrom(r.err);
    json ev = w_.WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "self" && e["agent"].value("task_id", "") == task;
    });
    ASSERT_FALSE(ev.is_null()) << w_.log();
    EXPECT_EQ(ev["syscall"]["name"], "kill");
    EXPECT_EQ(ev["syscall"]["target"], "writd");
    EXPECT_EQ(ev["syscall"]["result"], -EPERM);
    EXPECT_EQ(ev["outcome"], "prevented");
    EXPECT_EQ(ev["enforcement"], "lsm");
    EXPECT_EQ(w_.Stop(), 0) << w_.log();
    return;
  }
  // The caller died at syscall entry (no "kill ok"); the rest of the task lives on, because the
  // task's kill response is writd's to run and writd is dead.
  EXPECT_THAT(r.out, Not(HasSubstr("kill ok")));
  EXPECT_THAT(r.out, HasSubstr("after")) << r.err;
  for (int i = 0; i < 50 && kill(pid, 0) == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(w_.Stop(), 137)
      << "writd survived SIGKILL from a task without the filter: update the limit";
  ASSERT_TRUE(w_.Restart().ok()) << w_.log();
  const std::string task = TaskIdFrom(r.err);
  json ev = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "self" && e["agent"].value("task_id", "") == task;
  });
  ASSERT_FALSE(ev.is_null()) << "the attempt was not reported after the restart\n" << w_.log();
  EXPECT_EQ(ev["syscall"]["name"], "kill");
  EXPECT_EQ(ev["syscall"]["target"], "writd");
  EXPECT_EQ(ev["syscall"]["result"], 0);
  EXPECT_EQ(ev["outcome"], "killed_after");
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

}  // namespace
}  // namespace writ::testlib::evasion
