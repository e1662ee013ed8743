// The agent as attacker: the rungs, file paths, handles, renames and links.
// Fixture, attacker models and outcomes: evasion_fixture.h.
#include "evasion_fixture.h"

namespace writ::testlib::evasion {
namespace {

// ---- the rungs
// ------------------------------------------------------------------------------------------

// `writ status` names the rung that enforces each hook. The oracle is the kernel's own list of
// active LSMs: writd's LSM object loads where "bpf" is in it (Debian 12's 6.1 in the VM tier) and
// nowhere else (this project's CI host has no securityfs list with bpf, and refuses LSM programs).
TEST_P(Evasion, StatusNamesTheRungOfEachHook) {
  const bool bpf_lsm = absl::StrContains(ReadFile("/sys/kernel/security/lsm").value_or(""), "bpf");
  EXPECT_EQ(lsm_, bpf_lsm)
      << "BPF-LSM is listed by the kernel but writd did not load it, or the reverse";
  CmdResult r = writd_->Writ({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& st = r.out;
  const size_t from = st.find("enforcement:"), to = st.find("events by kind");
  if (from != std::string::npos && to != std::string::npos) {
    printf("%s", st.substr(from, to - from).c_str());  // the VM tier's log keeps it
  }
  EXPECT_EQ(RungActive(st, "lsm: "), bpf_lsm) << st;
  if (bpf_lsm) {
    for (const char* rung : {"exec: lsm (", "open: lsm (", "connect: lsm (", "unix: lsm ("}) {
      EXPECT_TRUE(RungActive(st, rung)) << rung << "\n" << st;
    }
    for (const char* hook :
         {"exec (lsm/bprm_check_security)", "open (lsm/file_open;", "connect (lsm/socket_connect;",
          "unix send (lsm/socket_sendmsg)", "link (lsm/path_rename", "self (lsm/task_kill"}) {
      EXPECT_TRUE(RungActive(st, hook)) << hook << "\n" << st;
    }
  } else {
    EXPECT_THAT(st, HasSubstr("unavailable (")) << st;  // the LSM probe's reason
    for (const char* rung :
         {"exec: kernel-signal (", "open: kernel-signal ", "connect: cgroup-bpf ("}) {
      EXPECT_TRUE(RungActive(st, rung)) << rung << "\n" << st;
    }
    EXPECT_FALSE(RungActive(st, "exec (lsm/bprm_check_security)")) << st;
  }
  // The containment hooks, the same on every kernel (unix: before the lookup by the LSM rung or
  // Linux 6.7's cgroup hooks, else at the connect's exit).
  EXPECT_TRUE(RungActive(st, "send: cgroup-bpf (")) << st;
  EXPECT_TRUE(RungActive(st, bpf_lsm ? "link: lsm (" : "link: kernel-signal ")) << st;
  // The LSM rung attaches no syscall tracepoint (each would put every process of the host on the
  // syscall slow path): none is listed active there.
  if (bpf_lsm) {
    for (absl::string_view line : absl::StrSplit(st, '\n')) {
      if (absl::StrContains(line, "(syscalls/")) {
        EXPECT_FALSE(absl::EndsWith(line, " active")) << line;
      }
    }
  }
  EXPECT_EQ(RungActive(st, "unix: lsm ("), bpf_lsm) << st;
  EXPECT_TRUE(RungActive(st, "unix: lsm (") || RungActive(st, "unix: cgroup-bpf (") ||
              RungActive(st, "unix: kernel-signal "))
      << st;
}

// ---- file paths
// ---------------------------------------------------------------------------------------

TEST_P(Evasion, SymlinkToDeniedFileIsResolvedAndKilled) {
  std::filesystem::create_symlink(secret_ + "/key", work_ + "/innocent");
  ExpectSecretOpenKilled(RunFiles(absl::StrCat("cat ", work_, "/innocent; echo after")));
}

TEST_P(Evasion, RelativeAndDotDotPathsAreResolvedAndKilled) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat("cd ", secret_, " && cat ../secret/./key; echo after")));
}

TEST_P(Evasion, ProcSelfRootPathIsResolvedAndKilled) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat("cat /proc/self/root", secret_, "/key; echo after")));
}

// An fd to the secret inherited from outside the task (the launcher's environment): reopening it
// via /proc/self/fd/N is an open, resolved to the secret, and killed. Reading the inherited fd
// directly is not an open at all: known limit (writ watches opens, not reads), pinned by the second
// half.
TEST_P(Evasion, InheritedFdReopenIsKilledButDirectReadIsALimit) {
  int fd =
      open((secret_ + "/key").c_str(), O_RDONLY);  // no O_CLOEXEC: writ run's child inherits it
  ASSERT_GE(fd, 0);
  CmdResult r = RunFiles(absl::StrCat("cat /proc/self/fd/", fd, "; echo after"));
  ExpectSecretOpenKilled(r);
  lseek(fd, 0, SEEK_SET);
  CmdResult r2 = RunFiles(absl::StrCat("cat <&", fd, "; echo after"));
  close(fd);
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_THAT(r2.out, HasSubstr("TOPSECRET"));  // limit: read through an inherited descriptor
  auto evs = Events(r2);
  EXPECT_TRUE(OpenOf(evs, secret_ + "/key").is_null());
}

// A hard link is a second name for the same inode: the kernel's path walk gives the name that was
// opened, which no path rule matches. writd takes the identity (device, inode) of every file a
// files.deny rule names when the task starts (here: every file below the denied directory) and the
// kernel kills an open of that identity at syscall exit, as it does for the path itself. The
// finding names the deny rule and says the file was reached under another name.
TEST_P(Evasion, HardlinkToDeniedFileIsKilledByItsIdentity) {
  std::filesystem::create_hard_link(secret_ + "/key", work_ + "/hl");
  CmdResult r = RunFiles(absl::StrCat("cat ", work_, "/hl; echo after"));
  EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
  auto evs = Events(r);
  ExpectTaskKilled(r, evs);
  json ev = OpenOf(evs, work_ + "/hl");
  ASSERT_FALSE(ev.is_null()) << "the hard link's open is reported under its own name";
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed_after");
  EXPECT_EQ(ev["enforcement"], lsm_ ? "lsm" : "kernel-signal");
  EXPECT_EQ(ev["finding"]["rule"], "e-files/files.deny[0]");
  EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("hard link"));
  struct stat st;
  ASSERT_EQ(stat((secret_ + "/key").c_str(), &st), 0);
  EXPECT_EQ(ev["file"].value("inode", 0ull), static_cast<unsigned long long>(st.st_ino));
}

// A hard link made inside the task, to a file that existed when the task started, is caught the
// same way. A file created below the denied directory after the start has no identity entry: its
// path is still denied, but a hard link to it is judged by the link's own name (known limit, pinned
// here with a file and link made outside the task while it runs).
TEST_P(Evasion, HardlinkMadeInsideTheTaskIsKilledOneToAFileCreatedLaterIsALimit) {
  CmdResult r = RunFiles(
      absl::StrCat("ln ", secret_, "/key ", work_, "/early && cat ", work_, "/early; echo after"));
  EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
  ExpectTaskKilled(r, Events(r));

  // The file and its link are made once the task runs (it says so with a file of its own): a fixed
  // delay raced the task's start on a slow machine (the VM tier's emulated CPU), where the file
  // then existed at the start and had its identity taken.
  std::thread outside([&] {
    for (int i = 0; i < 400 && !Exists(work_ + "/started"); i++) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::ofstream(secret_ + "/late") << "LATE";
    std::filesystem::create_hard_link(secret_ + "/late", work_ + "/late-link");
  });
  CmdResult r2 = RunFiles(absl::StrCat("touch ", work_, "/started; i=0; while [ ! -e ", work_,
                                       "/late-link ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); "
                                       "done; cat ",
                                       work_, "/late-link; echo after"));
  outside.join();
  EXPECT_EQ(r2.exit_code, 0) << "limit changed, update docs/threat-model.md: " << r2.out << r2.err;
  EXPECT_THAT(r2.out, HasSubstr("LATE"));
}

// Relative to the secret's directory: RESOLVE_NO_XDEV refuses (EXDEV) a walk that crosses a mount,
// and an absolute path crosses one wherever /tmp is a mount of its own (the VM tier's tmpfs).
TEST_P(Evasion, Openat2WithResolveFlagsIsKilled) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat("cd ", secret_, " && ", helper_, " openat2 key; echo after")));
}

TEST_P(Evasion, ChangedCommDoesNotChangeAttribution) {
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " comm-open kworker/0:1 ", secret_, "/key; echo after"));
  ExpectSecretOpenKilled(r);
  json ev = OpenOf(writd_->TaskEvents(TaskIdFrom(r.err)), secret_ + "/key");
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["process"].value("comm", ""), "kworker/0:1");  // reported, but judged all the same
}

TEST_P(Evasion, DoubleForkAndSetsidStayAttributed) {
  ExpectSecretOpenKilled(RunFiles(
      absl::StrCat("( setsid sh -c 'sleep 0.3; cat ", secret_, "/key' & ); sleep 3; echo after")));
}

TEST_P(Evasion, UnshareThenOpenIsStillJudged) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat(helper_, " unshare-open ", secret_, "/key; echo after")));
}

// Paths longer than the kernel buffer and bytes that are not UTF-8: the event is still one valid
// JSON line (the fixture fails the test on any malformed line), flagged truncated where cut.
TEST_P(Evasion, LongAndNonUtf8PathsGiveWellFormedEvents) {
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " longpath ", work_, "; ", helper_, " nonutf8 ", work_));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto evs = Events(r);  // parsed with nlohmann-json: malformed lines fail
  json lng = Find(evs, [](const json& e) {
    return e.value("kind", "") == "open" && e.contains("file") &&
           e["file"].value("path", "").find("/leaf") != std::string::npos;
  });
  // The kernel walks the path leaf first: a cut path keeps its leaf end (what rules match on) and
  // loses its top, with file.truncated set.
  ASSERT_FALSE(lng.is_null()) << "no open of the 5 KB path reported";
  EXPECT_TRUE(lng["file"].value("truncated", false)) << lng.dump();
  const std::string p = lng["file"]["path"];
  EXPECT_LT(p.size(), work_.size() + 25 * 201 + 5);
  EXPECT_EQ(p.substr(p.size() - 5), "/leaf");
  json bad = Find(evs, [](const json& e) {
    return e.value("kind", "") == "open" && e.contains("file") &&
           e["file"].value("path", "").find("/bad-") != std::string::npos;
  });
  ASSERT_FALSE(bad.is_null());
}

// open_by_handle_at(2) opens a file by a handle (name_to_handle_at), no name passing through the
// call: judged like any open, from the file it opened, and killed at its exit. It needs
// CAP_DAC_READ_SEARCH: the unprivileged agent gets EPERM from the kernel.
TEST_P(Evasion, OpenByHandleAtIsJudgedLikeAnOpenAndKilled) {
  // The mount fd: any directory of the same filesystem (not the denied one: opening it is a
  // violation).
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " open-by-handle ", secret_, "/key ", work_, "; echo after"));
  if (!root()) {
    // Without CAP_DAC_READ_SEARCH the kernel refuses the call itself: nothing is opened.
    EXPECT_THAT(r.out, HasSubstr("Operation not permitted")) << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
    EXPECT_THAT(r.out, HasSubstr("after"));
    return;
  }
  ExpectSecretOpenKilled(r);
  json ev = OpenOf(Events(r), secret_ + "/key");
  ASSERT_FALSE(ev.is_null()) << "open_by_handle_at of the denied file not reported";
  if (!lsm_) {
    EXPECT_EQ(ev["file"]["syscall"], "open_by_handle_at");  // lsm/file_open names none
  }
  EXPECT_EQ(ev["finding"]["rule"], "e-files/files.deny[0]");
}

// Renames and links cannot launder a denied name into an allowed one. Component denies (any .env,
// anything below any .ssh) and exact denies; rename, hard link and symlink; a name relative to the
// cwd inside the denied directory. The caller and its shell are SIGKILLed at the syscall's entry:
// the `cat` never runs (kernels without bpf_send_signal_task kill the caller only: the shell's
// `cat` then meets the new name's deny). The LSM rung refuses the call itself (lsm/path_*: EPERM,
// prevented), and the task is killed by its response.
TEST_P(Evasion, RenameOrLinkOfADeniedFileIsKilledBeforeTheNewNameIsRead) {
  const std::string exact = work_ + "/exact-secret";
  auto setup = [&] {
    std::filesystem::remove_all(work_ + "/p");
    std::filesystem::create_directories(work_ + "/p/.ssh");
    std::ofstream(work_ + "/p/.env") << "TOPSECRET-ENV";
    std::ofstream(work_ + "/p/.ssh/id_ed25519") << "TOPSECRET-KEY";
    std::ofstream(exact) << "TOPSECRET-EXACT";
  };
  struct Case {
    std::string script, rule, syscall_prefix;
  };
  const std::vector<Case> cases = {
      {"mv .env e.txt; cat e.txt", "e-comp/files.deny[0]", "rename"},
      {"ln .ssh/id_ed25519 k; cat k", "e-comp/files.deny[1]", "link"},
      {"ln -s .ssh/id_ed25519 s; cat s", "e-comp/files.deny[1]", "symlink"},
      {"cd .ssh && mv id_ed25519 ../k2; cat ../k2", "e-comp/files.deny[1]", "rename"},
      {"mv " + exact + " x; cat x", "e-comp/files.deny[2]", "rename"},
      {"ln " + exact + " y; cat y", "e-comp/files.deny[2]", "link"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.script);
    setup();
    CmdResult r = Run(absl::StrCat("cd ", work_, "/p && ", c.script, "; echo after"),
                      {"--intent", "e-comp", "--param", "exact=" + exact});
    EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
    auto evs = Events(r);
    ExpectTaskKilled(r, evs);  // and, where the kernel kills the shell too, `cat` never ran
    json ev = Find(evs, [](const json& e) { return e.value("kind", "") == "link"; });
    ASSERT_FALSE(ev.is_null()) << "no link event";
    EXPECT_THAT(ev["file"].value("syscall", ""), ::testing::StartsWith(c.syscall_prefix));
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed_after");
    EXPECT_EQ(ev["enforcement"], lsm_ ? "lsm" : "kernel-signal");
    EXPECT_EQ(ev["finding"]["rule"], c.rule);
    EXPECT_EQ(ev["file"].value("path", "").rfind("/", 0), 0u)
        << "the old name was not made absolute";
  }
}

// The new name stays denied in the kernel for every process of the task (its last component joins
// the task's component denies before the rename runs): with an alert-only response the task lives
// on, the shell's next command opens the laundered name, and that open is killed at its exit. The
// LSM rung refuses the rename itself (lsm/path_rename: EPERM): there is no new name to open.
TEST_P(Evasion, ARenamedDeniedFileStaysDeniedUnderItsNewName) {
  std::filesystem::create_directories(work_ + "/p");
  std::ofstream(work_ + "/p/.env") << "TOPSECRET-ENV";
  CmdResult r = Run(absl::StrCat("cd ", work_, "/p && (mv .env e.txt; cat e.txt; echo after)"),
                    {"--intent", "e-comp-alert", "--param", "exact=" + work_ + "/none"});
  EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(r.out, HasSubstr("after")) << r.err;  // alert only: the shell itself is not killed
  auto evs = Events(r);
  if (lsm_) {
    EXPECT_TRUE(std::filesystem::exists(work_ + "/p/.env")) << "the rename ran";
    EXPECT_FALSE(std::filesystem::exists(work_ + "/p/e.txt"));
    json mv = Find(evs, [](const json& e) { return e.value("kind", "") == "link"; });
    ASSERT_FALSE(mv.is_null()) << "the refused rename was not reported";
    EXPECT_EQ(mv["verdict"], "violation");
    EXPECT_EQ(mv["outcome"], "prevented");
    EXPECT_EQ(mv["enforcement"], "lsm");
    return;
  }
  json open = OpenOf(evs, work_ + "/p/e.txt");
  ASSERT_FALSE(open.is_null()) << "the open of the new name was not reported";
  EXPECT_EQ(open["verdict"], "violation");
  EXPECT_EQ(open["outcome"], "killed_after");
  EXPECT_EQ(open["enforcement"], "kernel-signal");
  EXPECT_EQ(open["finding"]["rule"], "e-comp-alert/files.deny.renamed");
}

}  // namespace
}  // namespace writ::testlib::evasion
