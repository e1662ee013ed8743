// The agent as attacker: evasion attempts against a real writd in enforce mode. Each test asserts
// one of three things, and fails if that ever changes (docs/threat-model.md names each test):
//   prevented  - the attempt does not happen (exec refused/killed before running, connect EPERM);
//   detected   - it happens, is reported as a violation and the task is killed (outcome
//   killed_after); known limit - writ does not see or stop it today; the test pins exactly what
//   writd reports.
// Needs root (writd loads BPF); skips otherwise. Attempts the shell cannot make run through
// evasion_helper (evasion_helper.c) inside the task.
// Two rungs (docs/architecture.md, Kernel matrix), read from `writ status` once: where writd's
// BPF-LSM object loads (Debian 12's 6.1 in the VM tier, scripts/vm-test.sh) a denied open or
// exec.deny'd exec is refused with EPERM (outcome prevented, enforcement lsm); elsewhere (this
// project's 6.18 CI kernel) the tracepoint rung kills it (killed_after / killed, kernel-signal).
// Each test states what it expects on each. Kernels without bpf_send_signal_task (< 6.13) cannot
// kill the actor's shell in the kernel: there the shell's next command may run before writd's
// cgroup.kill, and the tests say so.
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/listener.h"
#include "testlib/paths.h"
#include "testlib/writd_fixture.h"
#include "util/util.h"

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testlib::UdpReceiver;
using testlib::UnixListener;

constexpr char kAgent[] = "spiffe://example.org/agent/evader";

using testlib::RealPath;

// The suite is the root attacker model (docs/threat-model.md): every technique from a root agent,
// opted in on the command line (Run passes --allow-root) and in each intent (run_as_root).
constexpr char kIntents[] = R"(apiVersion: writ.dev/v1
kind: Intent
run_as_root: true
name: e-files
params:
  secret: {type: path, required: true}
files:
  deny: ["${secret}/**"]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
run_as_root: true
name: e-exec
params:
  exe: {type: path, required: true}
exec:
  deny: ["${exe}"]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
run_as_root: true
name: e-exec-monitor
params:
  exe: {type: path, required: true}
exec:
  deny: ["${exe}"]
on_violation: [alert]
mode: monitor
---
apiVersion: writ.dev/v1
kind: Intent
run_as_root: true
name: e-allow
params:
  helper: {type: path, required: true}
exec:
  allow: ["/usr/bin/*", "/bin/*", "${helper}"]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
run_as_root: true
name: e-net
params:
  port: {type: int, required: true}
network:
  connect:
    deny: [{cidr: 127.0.0.1/32, ports: ["${port}"]}]
on_violation: [alert]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
run_as_root: true
name: e-net-monitor
params:
  port: {type: int, required: true}
network:
  connect:
    deny: [{cidr: 127.0.0.1/32, ports: ["${port}"]}]
on_violation: [alert]
mode: monitor
---
apiVersion: writ.dev/v1
kind: Intent
name: e-allow-lib
run_as_root: true
params:
  helper: {type: path, required: true}
exec:
  allow: ["/usr/bin/*", "/bin/*", "/usr/lib/**", "${helper}"]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: e-repo
run_as_root: true
params:
  repo: {type: path, required: true}
  helper: {type: path, required: true}
exec:
  allow: ["${repo}/**", "/usr/bin/*", "/bin/*", "${helper}"]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: e-comp
run_as_root: true
params:
  exact: {type: path, required: true}
files:
  deny: ["**/.env", "**/.ssh/**", "${exact}"]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: e-comp-alert
run_as_root: true
params:
  exact: {type: path, required: true}
files:
  deny: ["**/.env", "**/.ssh/**", "${exact}"]
on_violation: [alert]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: e-udp
run_as_root: true
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [1]}]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: e-udp-alert
run_as_root: true
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [1]}]
on_violation: [alert]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: e-unix
run_as_root: true
params:
  ok: {type: path, required: true}
network:
  unix:
    allow: ["${ok}"]
on_violation: [alert, kill]
mode: enforce
)";

// `writ status` lists each rung as "  NAME  active|why not" (Loader::Rungs).
bool RungActive(const std::string& status, const std::string& prefix) {
  const size_t pos = status.find("\n  " + prefix);
  if (pos == std::string::npos) return false;
  const size_t end = status.find('\n', pos + 1);
  const std::string line = status.substr(pos + 1, end == std::string::npos ? end : end - pos - 1);
  return line.size() >= 6 && line.compare(line.size() - 6, 6, "active") == 0;
}

class Evasion : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    writd_ = new WritdInstance();
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["evasion.yaml"] = kIntents;
    start_status_ = new absl::Status(writd_->Start(o));
    if (start_status_->ok()) {
      const std::string st = writd_->Writ({"status"}).out;
      lsm_ = RungActive(st, "open: lsm ");
      lineage_ = RungActive(st, "lineage: ");
      unix_hook_ = RungActive(st, "unix: cgroup-bpf (");
      printf("evasion: rungs of this kernel: %s, kernel kill of the actor's shell %s\n",
             lsm_ ? "BPF-LSM" : "tracepoints and cgroup hooks", lineage_ ? "yes" : "no");
    }
  }

  static void TearDownTestSuite() {
    if (!writd_) return;
    if (writd_->running()) {
      EXPECT_EQ(writd_->Stop(), 0) << writd_->log();
    }
    delete writd_;
    delete start_status_;
    writd_ = nullptr;
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "evasion e2e needs root: writd loads BPF programs";
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
    char tmpl[] = "/tmp/writ-evasion-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    work_ = RealPath(tmpl);
    secret_ = work_ + "/secret";
    std::filesystem::create_directories(secret_);
    std::ofstream(secret_ + "/key") << "TOPSECRET";
  }
  void TearDown() override {
    if (!work_.empty()) std::filesystem::remove_all(work_);
  }

  CmdResult Run(const std::string& script, const std::vector<std::string>& intent_args) {
    std::vector<std::string> args = {"run", "--agent", kAgent, "--allow-root"};
    args.insert(args.end(), intent_args.begin(), intent_args.end());
    args.insert(args.end(), {"--", "/bin/sh", "-c", script});
    return writd_->Writ(args);
  }
  CmdResult RunFiles(const std::string& script) {
    return Run(script, {"--intent", "e-files", "--param", "secret=" + secret_});
  }
  // All events of the task once its task_end is written.
  std::vector<json> Events(const CmdResult& r) {
    std::string task = TaskIdFrom(r.err);
    EXPECT_FALSE(task.empty()) << r.err;
    json end = writd_->WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
    });
    EXPECT_FALSE(end.is_null()) << "no task_end for " << task << "\n" << writd_->log();
    return writd_->TaskEvents(task);
  }
  static json Find(const std::vector<json>& evs, const std::function<bool(const json&)>& p) {
    for (const auto& e : evs) {
      if (p(e)) return e;
    }
    return json();
  }
  static json OpenOf(const std::vector<json>& evs, const std::string& path) {
    return Find(evs, [&](const json& e) {
      return e.value("kind", "") == "open" && e.contains("file") && e["file"].value("path", "") == path;
    });
  }
  // The task ran a denied attempt and then `echo after`; its intent's responses include kill. Where
  // the kernel kills the actor's shell too (lineage_), nothing after the attempt runs; elsewhere
  // the shell races writd's cgroup.kill, and only the kill response itself is asserted.
  void ExpectTaskKilled(const CmdResult& r, const std::vector<json>& evs) {
    if (lineage_) {
      EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
      EXPECT_THAT(r.out, Not(HasSubstr("after")));
    }
    json kill = Find(evs, [](const json& e) {
      return e.value("kind", "") == "action" && e["action"].value("type", "") == "kill";
    });
    EXPECT_FALSE(kill.is_null()) << "the task's kill response did not run";
  }
  // The denied file was opened and the process killed at the open's exit (tracepoint rung), or the
  // open was refused (LSM rung); either way a violation, judged on the resolved path, and the task
  // killed by its response. The secret never reaches the output.
  void ExpectSecretOpenKilled(const CmdResult& r) {
    EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
    auto evs = Events(r);
    ExpectTaskKilled(r, evs);
    json ev = OpenOf(evs, secret_ + "/key");
    ASSERT_FALSE(ev.is_null()) << "no open of " << secret_ << "/key reported";
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed_after") << ev.dump();
    EXPECT_EQ(ev["enforcement"], lsm_ ? "lsm" : "kernel-signal");
  }
  bool Exists(const std::string& p) const { return access(p.c_str(), F_OK) == 0; }

  static WritdInstance* writd_;
  static absl::Status* start_status_;
  static bool lsm_;      // the BPF-LSM rung is active (writ status)
  static bool lineage_;  // a kernel deny also kills the actor's shell (writ status)
  static bool unix_hook_;  // cgroup/connect_unix refuses unix connects (Linux 6.7+; writ status)
  std::string work_, secret_;
  const std::string helper_ = EVASION_HELPER;
};
WritdInstance* Evasion::writd_ = nullptr;
absl::Status* Evasion::start_status_ = nullptr;
bool Evasion::lsm_ = false;
bool Evasion::lineage_ = false;
bool Evasion::unix_hook_ = false;

// ---- the rungs
// ------------------------------------------------------------------------------------------

// `writ status` names the rung that enforces each hook. The oracle is the kernel's own list of
// active LSMs: writd's LSM object loads where "bpf" is in it (Debian 12's 6.1 in the VM tier) and
// nowhere else (this project's CI host has no securityfs list with bpf, and refuses LSM programs).
TEST_F(Evasion, StatusNamesTheRungOfEachHook) {
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
    for (const char* rung : {"exec: lsm (", "open: lsm (", "connect: lsm ("}) {
      EXPECT_TRUE(RungActive(st, rung)) << rung << "\n" << st;
    }
    for (const char* hook : {"exec (lsm/bprm_check_security)", "open (lsm/file_open)",
                             "connect (lsm/socket_connect)"}) {
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
  // The containment hooks, the same on every kernel (unix connects at their exit before Linux 6.7).
  EXPECT_TRUE(RungActive(st, "send: cgroup-bpf (")) << st;
  EXPECT_TRUE(RungActive(st, "link: kernel-signal ")) << st;
  EXPECT_TRUE(RungActive(st, "unix: cgroup-bpf (") || RungActive(st, "unix: kernel-signal ")) << st;
}

// ---- file paths ---------------------------------------------------------------------------------------

TEST_F(Evasion, SymlinkToDeniedFileIsResolvedAndKilled) {
  std::filesystem::create_symlink(secret_ + "/key", work_ + "/innocent");
  ExpectSecretOpenKilled(RunFiles(absl::StrCat("cat ", work_, "/innocent; echo after")));
}

TEST_F(Evasion, RelativeAndDotDotPathsAreResolvedAndKilled) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat("cd ", secret_, " && cat ../secret/./key; echo after")));
}

TEST_F(Evasion, ProcSelfRootPathIsResolvedAndKilled) {
  ExpectSecretOpenKilled(RunFiles(absl::StrCat("cat /proc/self/root", secret_, "/key; echo after")));
}

// An fd to the secret inherited from outside the task (the launcher's environment): reopening it via
// /proc/self/fd/N is an open, resolved to the secret, and killed. Reading the inherited fd directly is
// not an open at all: known limit (writ watches opens, not reads), pinned by the second half.
TEST_F(Evasion, InheritedFdReopenIsKilledButDirectReadIsALimit) {
  int fd = open((secret_ + "/key").c_str(), O_RDONLY);  // no O_CLOEXEC: writ run's child inherits it
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
// kernel kills an open of that identity at syscall exit, as it does for the path itself. The finding
// names the deny rule and says the file was reached under another name.
TEST_F(Evasion, HardlinkToDeniedFileIsKilledByItsIdentity) {
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

// A hard link made inside the task, to a file that existed when the task started, is caught the same
// way. A file created below the denied directory after the start has no identity entry: its path is
// still denied, but a hard link to it is judged by the link's own name (known limit, pinned here with
// a file and link made outside the task while it runs).
TEST_F(Evasion, HardlinkMadeInsideTheTaskIsKilledOneToAFileCreatedLaterIsALimit) {
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
TEST_F(Evasion, Openat2WithResolveFlagsIsKilled) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat("cd ", secret_, " && ", helper_, " openat2 key; echo after")));
}

TEST_F(Evasion, ChangedCommDoesNotChangeAttribution) {
  CmdResult r = RunFiles(absl::StrCat(helper_, " comm-open kworker/0:1 ", secret_, "/key; echo after"));
  ExpectSecretOpenKilled(r);
  json ev = OpenOf(writd_->TaskEvents(TaskIdFrom(r.err)), secret_ + "/key");
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["process"].value("comm", ""), "kworker/0:1");  // reported, but judged all the same
}

TEST_F(Evasion, DoubleForkAndSetsidStayAttributed) {
  ExpectSecretOpenKilled(RunFiles(absl::StrCat(
      "( setsid sh -c 'sleep 0.3; cat ", secret_, "/key' & ); sleep 3; echo after")));
}

TEST_F(Evasion, UnshareThenOpenIsStillJudged) {
  ExpectSecretOpenKilled(
      RunFiles(absl::StrCat(helper_, " unshare-open ", secret_, "/key; echo after")));
}

// Paths longer than the kernel buffer and bytes that are not UTF-8: the event is still one valid JSON
// line (the fixture fails the test on any malformed line), flagged truncated where cut.
TEST_F(Evasion, LongAndNonUtf8PathsGiveWellFormedEvents) {
  CmdResult r = RunFiles(absl::StrCat(helper_, " longpath ", work_, "; ", helper_, " nonutf8 ", work_));
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

// ---- exec -----------------------------------------------------------------------------------------------

// exec.deny of an exact path: refused by lsm/bprm_check_security (prevented) or killed before its
// first instruction by the exec tracepoint (killed); the task's kill response runs either way.
void ExpectExecKilled(const CmdResult& r, const std::vector<json>& evs, const std::string& exe,
                      bool lsm, bool lineage) {
  if (lineage) EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  json ev;
  for (const auto& e : evs) {
    if (e.value("kind", "") == "exec" && e["process"].value("exe", "") == exe) ev = e;
  }
  ASSERT_FALSE(ev.is_null()) << "no exec of " << exe;
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], lsm ? "prevented" : "killed");
  EXPECT_EQ(ev["enforcement"], lsm ? "lsm" : "kernel-signal");
}

// A self-protection attempt the launcher's seccomp filter refused: EPERM to the caller, an OWASP-ASI10
// finding (kind "self"), and the task killed by its response (`; sleep 5; echo after` never finishes).
json ExpectSelfPrevented(const CmdResult& r, const std::vector<json>& evs, const std::string& syscall,
                         const std::string& target) {
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  // The caller's own report races the task-wide kill that follows the finding (the helper may die
  // before it prints): what it got is asserted from the record's syscall.result (-EPERM) below, and
  // whatever it did print must be that error, never success.
  if (!r.out.empty()) {
    EXPECT_THAT(r.out, HasSubstr("error Operation not permitted")) << r.err;
  }
  EXPECT_THAT(r.out, Not(HasSubstr(" ok ")));
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  json ev;
  for (const auto& e : evs) {
    if (e.value("kind", "") == "self" && e["syscall"].value("name", "") == syscall) ev = e;
  }
  EXPECT_FALSE(ev.is_null()) << "no self event for " << syscall;
  if (ev.is_null()) return ev;
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "prevented");
  EXPECT_EQ(ev["enforcement"], "seccomp");
  EXPECT_EQ(ev["syscall"]["result"], -EPERM);
  EXPECT_EQ(ev["syscall"].value("target", ""), target);
  EXPECT_EQ(ev["finding"]["category"], "self");
  EXPECT_EQ(ev["finding"]["rule"], "writ/self." + syscall);
  EXPECT_THAT(ev["finding"]["frameworks"].get<std::vector<std::string>>(),
              ::testing::Contains("OWASP-ASI10"));
  bool killed = false;
  for (const auto& e : evs) {
    if (e.value("kind", "") == "action" && e["action"].value("type", "") == "kill") killed = true;
  }
  EXPECT_TRUE(killed) << "the task was not killed after a self-protection finding";
  return ev;
}

TEST_F(Evasion, ExecveatOfDeniedBinaryIsKilled) {
  const std::string touch = RealPath("/usr/bin/touch");
  CmdResult r = Run(absl::StrCat(helper_, " execveat ", touch, "; echo after"),
                    {"--intent", "e-exec", "--param", "exe=" + touch});
  ExpectExecKilled(r, Events(r), touch, lsm_, lineage_);
  if (lineage_) EXPECT_THAT(r.out, Not(HasSubstr("after")));
}

TEST_F(Evasion, FexecveOfDeniedBinaryIsKilled) {
  const std::string touch = RealPath("/usr/bin/touch");
  CmdResult r = Run(absl::StrCat(helper_, " fexecve ", touch, "; echo after"),
                    {"--intent", "e-exec", "--param", "exe=" + touch});
  ExpectExecKilled(r, Events(r), touch, lsm_, lineage_);
}

TEST_F(Evasion, CopiedDeniedBinaryUnderAnotherNameIsALimitOfPathRules) {
  // exec rules are over paths, not content: a copy elsewhere is a different exe. Pinned so that a
  // future content-hash rule flips this test.
  const std::string touch = RealPath("/usr/bin/touch");
  const std::string marker = work_ + "/copied-ran";
  CmdResult r = Run(absl::StrCat("cp ", touch, " ", work_, "/t2 && ", work_, "/t2 ", marker),
                    {"--intent", "e-exec", "--param", "exe=" + touch});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(marker));
}

// A memfd has no path on any mount the agent sees: the kernel's walk of the exe gives "/" (the
// internal shm mount's root), which no exec.allow pattern matches, so the payload is killed before it
// runs (enforcement kernel-signal). The comm shows the memfd name. The task's kill response lands
// before the payload's own kill, so the shell that started it never runs its next command.
TEST_F(Evasion, MemfdExecIsNotInTheAllowListAndIsKilled) {
  const std::string marker = work_ + "/memfd-ran";
  CmdResult r = Run(absl::StrCat(helper_, " memfd-exec /usr/bin/touch touch ", marker, "; echo after"),
                    {"--intent", "e-allow", "--param", "helper=" + helper_});
  EXPECT_FALSE(Exists(marker)) << "the memfd payload ran";
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  auto evs = Events(r);
  json ev = Find(evs, [](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("comm", "") == "memfd:payload";
  });
  ASSERT_FALSE(ev.is_null()) << "no exec of the memfd payload reported";
  EXPECT_EQ(ev["process"]["exe"], "/");
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "killed");
  EXPECT_EQ(ev["finding"]["rule"], "e-allow/exec.default");
}

// A shebang exec runs the interpreter (exe) on the script, which the kernel names only as the
// string passed to execve (process.filename). exec.deny and exec.approve rules judge the script
// too: in enforce mode the kernel stops the interpreter before its first instruction
// (WRIT_TASK_EXEC_SCRIPT), writd resolves the name against the stopped process's cwd, fds and
// symlinks (process.script), and a denied script is killed before it runs. By absolute path, by a
// relative path with "..", and through a symlink. On the LSM rung, bprm_check_security sees the
// script's own file in the first binfmt round and refuses it with EPERM: the exec reported is the
// script itself (exe = the script, resolved by the kernel: no name for writd to resolve), outcome
// prevented.
TEST_F(Evasion, ShebangExecOfADeniedScriptIsKilledBeforeItRuns) {
  std::filesystem::create_directories(work_ + "/sub");
  const std::string script = work_ + "/evil.sh";
  const std::string marker = work_ + "/script-ran";
  std::ofstream(script) << "#!/bin/sh\ntouch " << marker << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  std::filesystem::create_symlink(script, work_ + "/sub/innocent.sh");
  for (const std::string& inv : {script, std::string("../sub/../evil.sh"), std::string("./innocent.sh")}) {
    SCOPED_TRACE(inv);
    CmdResult r = Run(absl::StrCat("cd ", work_, "/sub && ", inv, "; echo after"),
                      {"--intent", "e-exec", "--param", "exe=" + script});
    EXPECT_FALSE(Exists(marker)) << "the denied script ran";
    auto evs = Events(r);
    ExpectTaskKilled(r, evs);
    json ev = Find(evs, [&](const json& e) {
      return e.value("kind", "") == "exec" && (lsm_ ? e["process"].value("exe", "") == script
                                                    : e["process"].value("script", "") == script);
    });
    ASSERT_FALSE(ev.is_null()) << "no exec with process." << (lsm_ ? "exe" : "script") << " = "
                               << script;
    EXPECT_EQ(ev["process"]["filename"], inv);
    EXPECT_EQ(ev["process"]["exe"], lsm_ ? script : RealPath("/bin/sh"));
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed");
    EXPECT_EQ(ev["enforcement"], lsm_ ? "lsm" : "kernel-signal");
    EXPECT_EQ(ev["finding"]["rule"], "e-exec/exec.deny[0]");
    if (!lsm_) EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr(script + " (run by "));
    std::filesystem::remove(marker);
  }
}

// The kernel's copy of the name passed to execve is cut at 255 bytes; writd takes the whole name
// from the stopped interpreter's argv, where binfmt_script put it. (LSM rung: the kernel's own walk
// of the script's file gives the whole path, and the exec is refused.)
TEST_F(Evasion, ShebangExecOfADeniedScriptWithALongPathIsKilled) {
  const std::string dir = work_ + "/" + std::string(200, 'd') + "/" + std::string(150, 'e');
  std::filesystem::create_directories(dir);
  const std::string script = dir + "/evil.sh";
  const std::string marker = work_ + "/long-ran";
  std::ofstream(script) << "#!/bin/sh\ntouch " << marker << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  ASSERT_GT(script.size(), 255u);
  CmdResult r = Run(script + "; echo after", {"--intent", "e-exec", "--param", "exe=" + script});
  EXPECT_FALSE(Exists(marker)) << "the denied script ran";
  auto evs = Events(r);
  ExpectTaskKilled(r, evs);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "exec" &&
           e["process"].value(lsm_ ? "exe" : "script", "") == script;
  });
  ASSERT_FALSE(ev.is_null()) << "no exec with the whole script path";
  EXPECT_EQ(ev["process"]["filename"].get<std::string>().size(), 255u);  // the kernel's copy
  EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed");
}

// Monitor mode: the script runs (nothing is stopped) and the exec is reported with its script and the
// violation it would have been.
TEST_F(Evasion, ShebangExecOfADeniedScriptInMonitorModeIsReported) {
  const std::string script = work_ + "/evil-m.sh";
  const std::string marker = work_ + "/script-m-ran";
  std::ofstream(script) << "#!/bin/sh\ntouch " << marker << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  CmdResult r = Run(script, {"--intent", "e-exec-monitor", "--param", "exe=" + script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(marker));
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("script", "") == script;
  });
  ASSERT_FALSE(ev.is_null()) << "no exec with process.script = " << script;
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "would_deny");
}

// `sh script`: the exe is the shell and the script only an argument the shell opens and reads; no
// exec names it. exec.deny of the script path does not stop it: known limit (deny or allow-list
// interpreters; deny the script's path under files: so reading it is a violation). Pinned.
TEST_F(Evasion, InterpreterGivenADeniedScriptAsArgumentKnownLimit) {
  const std::string script = work_ + "/evil-arg.sh";
  const std::string marker = work_ + "/script-arg-ran";
  std::ofstream(script) << "touch " << marker << "\n";
  CmdResult r = Run(absl::StrCat("/bin/sh ", script), {"--intent", "e-exec", "--param", "exe=" + script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(marker)) << "sh SCRIPT: limit changed, update docs/threat-model.md";
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("exe", "") == RealPath("/bin/sh");
  });
  ASSERT_FALSE(ev.is_null());
  EXPECT_FALSE(ev["process"].contains("script"));
  EXPECT_NE(ev.value("verdict", ""), "violation");
}

// ---- network --------------------------------------------------------------------------------------------

// io_uring: `writ run`'s seccomp filter refuses io_uring_setup (EPERM) so neither IORING_OP_OPENAT
// (which bypasses the open tracepoints) nor IORING_OP_CONNECT ever runs: an OWASP-ASI10 finding, and
// the task is killed by its response.
TEST_F(Evasion, IoUringIsPreventedAndTheTaskKilled) {
  CmdResult r = RunFiles(absl::StrCat(helper_, " uring-open ", secret_, "/key; sleep 5; echo after"));
  // The task-wide kill can land before the helper prints (it no longer waits for the finding's journal
  // fsync): ExpectSelfPrevented checks that whatever was printed is the EPERM, and the record's result.
  if (!r.out.empty()) {
    EXPECT_THAT(r.out, HasSubstr("uring-open error Operation not permitted"));
  }
  EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
  ExpectSelfPrevented(r, Events(r), "io_uring_setup", "");
}

// Without the filter (writ run --no-seccomp; the fallback for processes the launcher did not start) a
// monitor-mode task's io_uring connect still meets the cgroup connect hook, which sees every connect of
// the cgroup, io_uring's included: reported (hook "cgroup"), and the io_uring_setup is a finding too.
TEST_F(Evasion, IoUringConnectWithoutTheFilterIsSeenByTheCgroupHook) {
  Listener l(AF_INET);
  ASSERT_NE(l.port, 0);
  CmdResult r = Run(absl::StrCat(helper_, " uring-connect ", l.port),
                    {"--no-seccomp", "--intent", "e-net-monitor", "--param", absl::StrCat("port=", l.port)});
  EXPECT_THAT(r.out, HasSubstr("uring-connect ok")) << r.err;
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "connect" && e["network"].value("dst_port", 0) == l.port;
  });
  ASSERT_FALSE(ev.is_null()) << "io_uring connect not reported";
  EXPECT_EQ(ev["network"]["hook"], "cgroup");
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "would_deny");
  json setup = Find(evs, [](const json& e) {
    return e.value("kind", "") == "self" && e["syscall"].value("name", "") == "io_uring_setup";
  });
  ASSERT_FALSE(setup.is_null());
  EXPECT_EQ(setup["outcome"], "would_deny");
  EXPECT_EQ(setup["finding"]["frameworks"][0], "OWASP-ASI10");
}

// ---- the host and writd itself ------------------------------------------------------------------------

// bpf() from a task (which could detach or override writ's programs): refused by the filter.
TEST_F(Evasion, BpfSyscallIsPreventedAndTheTaskKilled) {
  CmdResult r = RunFiles(absl::StrCat(helper_, " bpf; sleep 5; echo after"));
  ExpectSelfPrevented(r, Events(r), "bpf", "");
}

// Without the filter the bpf() call runs, but the caller is SIGKILLed at syscall entry and never sees
// the fd it created: outcome killed_after, the syscall's own result recorded.
TEST_F(Evasion, BpfWithoutTheFilterKillsTheCallerAtEntry) {
  CmdResult r = Run(absl::StrCat(helper_, " bpf; sleep 5; echo after"),
                    {"--no-seccomp", "--intent", "e-files", "--param", "secret=" + secret_});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("bpf ok")));
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  auto evs = Events(r);
  json ev = Find(evs, [](const json& e) {
    return e.value("kind", "") == "self" && e["syscall"].value("name", "") == "bpf";
  });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["outcome"], "killed_after");
  EXPECT_EQ(ev["enforcement"], "kernel-signal");
  EXPECT_GE(ev["syscall"].value("result", -1), 0);  // the map was created: the call did run
}

// ptrace attach of a process outside the task (to drive it from there): refused whoever the target.
TEST_F(Evasion, PtraceOfAnotherProcessIsPrevented) {
  pid_t victim = fork();
  if (victim == 0) {
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(victim, 0);
  CmdResult r = RunFiles(absl::StrCat(helper_, " ptrace ", victim, "; sleep 5; echo after"));
  json ev = ExpectSelfPrevented(r, Events(r), "ptrace", "process");
  if (!ev.is_null()) {
    EXPECT_EQ(ev["syscall"]["target_pid"], victim);
  }
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
}

// Known limit, on both rungs: a root agent can move itself to the cgroup2 root by writing its pid
// to the root's cgroup.procs, and from there nothing it does is attributed to its task (every hook
// keys on the task cgroup). This test used to write /sys/fs/cgroup/cgroup.procs, which on this
// project's CI host is a tmpfs of cgroup v1 hierarchies (cgroup2 is at /sys/fs/cgroup/unified): the
// write created a regular file, the process never moved, and the test passed for the wrong reason.
// The VM tier, whose cgroup2 is at /sys/fs/cgroup, showed the escape. Now the write goes to the
// real cgroup2 root.
TEST_F(Evasion, LeavingTheTaskCgroupForTheRootEscapesAttributionKnownLimit) {
  const std::string root = std::filesystem::path(writd_->cgroup_root()).parent_path().string();
  CmdResult r = RunFiles(
      absl::StrCat("echo $$ > ", root, "/cgroup.procs && cat ", secret_, "/key; echo after"));
  EXPECT_EQ(r.exit_code, 0) << "limit changed, update docs/threat-model.md: " << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("TOPSECRET"));
  auto evs = Events(r);
  EXPECT_TRUE(OpenOf(evs, secret_ + "/key").is_null()) << "the open was attributed after all";
}

// Writing a policy file from inside a task: denied like any file once an intent denies writd's
// directories; and a control-API reload from inside a task must not loosen the running task.
TEST_F(Evasion, WritingThePoliciesDirIsJudgedLikeAnyFile) {
  const std::string pol = RealPath(writd_->policies_dir());
  CmdResult r = Run(absl::StrCat("echo x > ", pol, "/evil.yaml; echo after"),
                    {"--intent", "e-files", "--param", "secret=" + pol});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  auto evs = Events(r);
  json ev = OpenOf(evs, pol + "/evil.yaml");
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["verdict"], "violation");
  std::filesystem::remove(pol + "/evil.yaml");
}

// ---- no syscall around the hooks (issue 16) --------------------------------------------------

// Alive and not a zombie: writd is the test's child, and kill(pid, 0) succeeds on a zombie too.
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  const size_t rp = line.rfind(')');
  return rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] != 'Z';
}
// ----------------------------------------------------------

// open_by_handle_at(2) opens a file by a handle (name_to_handle_at), no name passing through the
// call: judged like any open, from the file it opened, and killed at its exit (a root task: it
// needs CAP_DAC_READ_SEARCH).
TEST_F(Evasion, OpenByHandleAtIsJudgedLikeAnOpenAndKilled) {
  // The mount fd: any directory of the same filesystem (not the denied one: opening it is a
  // violation).
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " open-by-handle ", secret_, "/key ", work_, "; echo after"));
  ExpectSecretOpenKilled(r);
  json ev = OpenOf(Events(r), secret_ + "/key");
  ASSERT_FALSE(ev.is_null()) << "open_by_handle_at of the denied file not reported";
  if (!lsm_) EXPECT_EQ(ev["file"]["syscall"], "open_by_handle_at");  // lsm/file_open names none
  EXPECT_EQ(ev["finding"]["rule"], "e-files/files.deny[0]");
}

// A datagram sent to a denied address without connect(): refused by cgroup/sendmsg4|6 with EPERM,
// the datagram never leaves, a connect event flagged as a send, the task killed by its response.
TEST_F(Evasion, UdpSendtoWithoutConnectIsPreventedV4AndV6) {
  for (int family : {AF_INET, AF_INET6}) {
    SCOPED_TRACE(family == AF_INET ? "v4" : "v6");
    UdpReceiver rx(family);
    ASSERT_NE(rx.port, 0);
    const std::string ip = family == AF_INET ? "127.0.0.1" : "::1";
    CmdResult r =
        Run(absl::StrCat(helper_, " udp-send ", ip, " ", rx.port, "; sleep 5; echo after"),
            {"--intent", "e-udp"});
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    if (!r.out.empty()) {
      EXPECT_THAT(r.out, HasSubstr("udp-send error Operation not permitted"));
    }
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
    EXPECT_EQ(rx.Received(), 0) << "the datagram left";
    auto evs = Events(r);
    json ev = Find(evs, [&](const json& e) {
      return e.value("kind", "") == "connect" && e["network"].value("dst_port", 0) == rx.port;
    });
    ASSERT_FALSE(ev.is_null()) << "the refused send was not reported";
    EXPECT_EQ(ev["network"]["send"], true);
    EXPECT_EQ(ev["network"]["hook"], "cgroup");
    EXPECT_EQ(ev["network"]["dst_ip"], ip);
    EXPECT_EQ(ev["network"]["result"], -1);
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], "prevented");
    EXPECT_EQ(ev["enforcement"], "cgroup-bpf");
    EXPECT_EQ(ev["finding"]["rule"], "e-udp/network.connect.default");
    EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("datagram to "));
  }
}

// A dual-stack socket reaching IPv4 through a v4-mapped address is judged by the IPv4 rules in the
// kernel too (a deny-only rule used to be applied in userspace only, after the send).
TEST_F(Evasion, UdpSendToAV4MappedAddressIsJudgedAsIpv4) {
  UdpReceiver rx(AF_INET6);
  ASSERT_NE(rx.port, 0);
  CmdResult r = Run(absl::StrCat(helper_, " udp-send ::ffff:127.0.0.1 ", rx.port),
                    {"--intent", "e-net", "--param", absl::StrCat("port=", rx.port)});
  EXPECT_THAT(r.out, HasSubstr("udp-send error Operation not permitted")) << r.err;
  EXPECT_EQ(rx.Received(), 0);
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["outcome"], "prevented");
  EXPECT_EQ(ev["finding"]["rule"], "e-net/network.connect.deny[0]");
}

// A flood of refused sends costs the ring buffer a few records: one per destination per second, the
// rest counted (writ_kernel_suppressed_total, and the next record says how many it stands for). The
// task's response is only an alert here, so it keeps sending.
TEST_F(Evasion, UdpFloodOfRefusedSendsIsReportedBoundedAndCounted) {
  UdpReceiver rx(AF_INET);
  ASSERT_NE(rx.port, 0);
  CmdResult r = Run(absl::StrCat(helper_, " udp-send 127.0.0.1 ", rx.port, " 20000; sleep 1.2; ",
                                 helper_, " udp-send 127.0.0.1 ", rx.port),
                    {"--intent", "e-udp-alert"});
  EXPECT_THAT(r.out, HasSubstr("refused 20000 of 20000")) << r.err;
  EXPECT_EQ(rx.Received(), 0);
  auto evs = Events(r);
  std::vector<json> sends;
  for (const auto& e : evs) {
    if (e.value("kind", "") == "connect" && e["network"].value("send", false)) sends.push_back(e);
  }
  // 20000 sends in well under the second it takes: 1 record, plus 1 for the send after the pause.
  ASSERT_GE(sends.size(), 2u);
  EXPECT_LE(sends.size(), 4u) << "refused sends were not rate-limited";
  uint64_t suppressed = 0;
  for (const auto& e : sends) suppressed += e["network"].value("suppressed", 0);
  EXPECT_GE(suppressed, 19990u) << "the record after the pause says how many were not reported";
  EXPECT_EQ(sends.back()["verdict"], "violation");
  CmdResult st = writd_->Writ({"status"});
  EXPECT_THAT(st.out, HasSubstr("kernel_sends_suppressed"));
}

// Unix sockets: an intent lists the sockets it may connect to. Anything else -- an SSH agent, D-Bus
// (whose systemd-run starts processes outside the task), a container runtime -- is refused by
// cgroup/connect_unix before the socket is looked up: nothing connects.
TEST_F(Evasion, UnixConnectToAnUnlistedSocketIsPrevented) {
  UnixListener ok(work_ + "/ok.sock"), agent(work_ + "/agent.sock");
  UnixListener abstract("@writ-evasion-" + std::to_string(getpid()));
  ASSERT_GE(ok.fd, 0);
  ASSERT_GE(agent.fd, 0);
  ASSERT_GE(abstract.fd, 0);
  const std::vector<std::string> intent = {"--intent", "e-unix", "--param",
                                           "ok=" + work_ + "/ok.sock"};
  CmdResult allowed = Run(absl::StrCat(helper_, " unix-connect ", work_, "/ok.sock"), intent);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.out << allowed.err;
  EXPECT_TRUE(ok.Pending());
  json ev = Find(Events(allowed), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null()) << "the allowed unix connect was not reported";
  EXPECT_EQ(ev["network"]["family"], "unix");
  EXPECT_EQ(ev["network"]["path"], work_ + "/ok.sock");
  EXPECT_EQ(ev["network"]["peer_path"], work_ + "/ok.sock");
  EXPECT_EQ(ev["verdict"], "allow");

  for (const std::string& name : {work_ + "/agent.sock", abstract.name}) {
    SCOPED_TRACE(name);
    CmdResult r =
        Run(absl::StrCat(helper_, " unix-connect ", name, "; sleep 5; echo after"), intent);
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("unix-connect ok")));
    json refused = Find(Events(r), [](const json& e) { return e.value("kind", "") == "connect"; });
    ASSERT_FALSE(refused.is_null());
    EXPECT_EQ(refused["network"]["path"], name);
    EXPECT_EQ(refused["finding"]["rule"], "e-unix/network.unix.default");
    if (unix_hook_) {
      EXPECT_FALSE(agent.Pending() || abstract.Pending()) << "the refused connect got through";
      EXPECT_EQ(refused["network"]["result"], -1);
      EXPECT_EQ(refused["outcome"], "prevented");
      EXPECT_EQ(refused["enforcement"], "cgroup-bpf");
    } else {
      // Linux < 6.7 (no cgroup/connect_unix): the connect happened and its caller was killed at
      // the syscall's exit, before it could use the socket.
      EXPECT_EQ(refused["outcome"], "killed_after");
      EXPECT_EQ(refused["enforcement"], "kernel-signal");
      (void)agent.Pending();
      (void)abstract.Pending();
    }
  }
}

// An allowed name pointed (symlink) at another socket reaches that one: the socket file the connect
// reached is judged too, and the task killed.
TEST_F(Evasion, UnixConnectThroughASymlinkIsJudgedByTheSocketReached) {
  UnixListener agent(work_ + "/agent.sock");
  ASSERT_GE(agent.fd, 0);
  std::filesystem::create_symlink(work_ + "/agent.sock", work_ + "/ok.sock");
  CmdResult r = Run(absl::StrCat(helper_, " unix-connect ", work_, "/ok.sock; sleep 5; echo after"),
                    {"--intent", "e-unix", "--param", "ok=" + work_ + "/ok.sock"});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  json ev = Find(Events(r), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["network"]["path"], work_ + "/ok.sock");
  EXPECT_EQ(ev["network"]["peer_path"], work_ + "/agent.sock");
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "killed_after");
  EXPECT_EQ(ev["finding"]["rule"], "e-unix/network.unix.default");
  EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("the socket " + work_ + "/agent.sock"));
}

// An intent with an egress allow list and no network.unix allows no unix socket (but writd's own).
TEST_F(Evasion, UnixSocketsAreDeniedByAConnectAllowListsDefault) {
  UnixListener agent(work_ + "/agent.sock");
  ASSERT_GE(agent.fd, 0);
  CmdResult r =
      Run(absl::StrCat(helper_, " unix-connect ", work_, "/agent.sock; sleep 5; echo after"),
          {"--intent", "e-udp"});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  json ev = Find(Events(r), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(ev.is_null());
  EXPECT_EQ(ev["outcome"], unix_hook_ ? "prevented" : "killed_after");
  if (unix_hook_) EXPECT_FALSE(agent.Pending());
  EXPECT_EQ(ev["finding"]["rule"], "e-udp/network.unix.default");
  // A socket that does not exist reached nothing (glibc probing nscd): refused, but no finding.
  CmdResult probe = Run(absl::StrCat(helper_, " unix-connect ", work_, "/no-such.sock; echo after"),
                        {"--intent", "e-udp"});
  EXPECT_EQ(probe.exit_code, 0) << probe.out << probe.err;
  EXPECT_THAT(probe.out, HasSubstr("after"));
  json pe = Find(Events(probe), [](const json& e) { return e.value("kind", "") == "connect"; });
  ASSERT_FALSE(pe.is_null());
  if (unix_hook_) EXPECT_EQ(pe["outcome"], "prevented");  // elsewhere it failed by itself (ENOENT)
  EXPECT_FALSE(pe.contains("finding"));
}

// Renames and links cannot launder a denied name into an allowed one. Component denies (any .env,
// anything below any .ssh) and exact denies; rename, hard link and symlink; a name relative to the
// cwd inside the denied directory. The caller and its shell are SIGKILLed at the syscall's entry:
// the `cat` never runs (kernels without bpf_send_signal_task kill the caller only: the shell's `cat`
// then meets the new name's deny).
TEST_F(Evasion, RenameOrLinkOfADeniedFileIsKilledBeforeTheNewNameIsRead) {
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
    EXPECT_EQ(ev["outcome"], "killed_after");
    EXPECT_EQ(ev["enforcement"], "kernel-signal");
    EXPECT_EQ(ev["finding"]["rule"], c.rule);
    EXPECT_EQ(ev["file"].value("path", "").rfind("/", 0), 0u)
        << "the old name was not made absolute";
  }
}

// The new name stays denied in the kernel for every process of the task (its last component joins
// the task's component denies before the rename runs): with an alert-only response the task lives
// on, the shell's next command opens the laundered name, and that open is killed at its exit.
TEST_F(Evasion, ARenamedDeniedFileStaysDeniedUnderItsNewName) {
  std::filesystem::create_directories(work_ + "/p");
  std::ofstream(work_ + "/p/.env") << "TOPSECRET-ENV";
  CmdResult r = Run(absl::StrCat("cd ", work_, "/p && (mv .env e.txt; cat e.txt; echo after)"),
                    {"--intent", "e-comp-alert", "--param", "exact=" + work_ + "/none"});
  EXPECT_THAT(r.out, Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(r.out, HasSubstr("after")) << r.err;  // alert only: the shell itself is not killed
  auto evs = Events(r);
  json open = OpenOf(evs, work_ + "/p/e.txt");
  ASSERT_FALSE(open.is_null()) << "the open of the new name was not reported";
  EXPECT_EQ(open["verdict"], "violation");
  EXPECT_EQ(open["outcome"], lsm_ ? "prevented" : "killed_after");
  EXPECT_EQ(open["enforcement"], lsm_ ? "lsm" : "kernel-signal");
  EXPECT_EQ(open["finding"]["rule"], "e-comp-alert/files.deny.renamed");
}

// The dynamic loader run as a program is judged by the program it loads, however it is named and
// whatever options come first: the kernel stops it before its first instruction, writd finds the
// program (process.loaded) and kills it. A program the allow list allows runs.
TEST_F(Evasion, DynamicLoaderRunAsAProgramIsJudgedByTheProgramItLoads) {
  const std::string ld = "/lib64/ld-linux-x86-64.so.2";
  const std::string real_ld = RealPath(ld);
  std::filesystem::copy_file(RealPath("/usr/bin/touch"), work_ + "/t2");
  std::filesystem::permissions(work_ + "/t2", std::filesystem::perms::owner_all);
  const std::string marker = work_ + "/loaded-ran";
  const std::vector<std::string> intent = {"--intent", "e-allow-lib", "--param",
                                           "helper=" + helper_};
  for (const std::string& inv :
       {ld + " ./t2", real_ld + " ./t2", ld + " --library-path /tmp --argv0 /usr/bin/git ./t2",
        ld + " --preload /usr/lib/x86_64-linux-gnu/libc.so.6 ./t2", ld + " --inhibit-cache ./t2"}) {
    SCOPED_TRACE(inv);
    CmdResult r = Run(absl::StrCat("cd ", work_, " && ", inv, " ", marker, "; echo after"), intent);
    EXPECT_FALSE(Exists(marker)) << "the loaded program ran";
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
    json ev = Find(Events(r), [&](const json& e) {
      return e.value("kind", "") == "exec" && e["process"].value("exe", "") == real_ld;
    });
    ASSERT_FALSE(ev.is_null()) << "no exec of the loader";
    EXPECT_EQ(ev["process"]["loaded"], work_ + "/t2");
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], "killed");
    EXPECT_EQ(ev["enforcement"], "kernel-signal");
    EXPECT_EQ(ev["finding"]["rule"], "e-allow-lib/exec.default");
    EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("(loaded by " + real_ld + ")"));
    std::filesystem::remove(marker);
  }
  // A bare name the loader would look up in library paths itself: never allowed.
  CmdResult bare = Run(absl::StrCat("cd ", work_, " && ", ld, " --library-path ", work_, " t2 ",
                                    marker, "; echo after"),
                       intent);
  EXPECT_FALSE(Exists(marker));
  EXPECT_EQ(bare.exit_code, 137) << bare.out << bare.err;
  json b = Find(Events(bare), [&](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("exe", "") == real_ld;
  });
  ASSERT_FALSE(b.is_null());
  EXPECT_EQ(b["process"]["unresolved"], true);
  EXPECT_EQ(b["finding"]["rule"], "e-allow-lib/exec.unresolved");
  // An allowed program through the loader runs.
  CmdResult ok = Run(absl::StrCat(ld, " /usr/bin/touch ", marker), intent);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(Exists(marker));
}

// An exec whose path is deeper than the kernel's walk (48 components) is reported by its tail,
// which can be made to look like an allowed path (here: the repository the intent allows, below an
// attacker's directory). It is never allowed: stopped, judged unresolved, killed.
TEST_F(Evasion, ExecOfAPathTooDeepToResolveIsNeverAllowed) {
  const std::string repo = work_ + "/repo";
  std::vector<std::string> comps;
  for (absl::string_view c : absl::StrSplit(repo, '/', absl::SkipEmpty())) comps.emplace_back(c);
  const int fill = 48 - static_cast<int>(comps.size()) - 1;
  std::string chain;
  for (const auto& c : comps) absl::StrAppend(&chain, " ", c);
  for (int i = 0; i < fill; i++) absl::StrAppend(&chain, " d");
  const std::string marker = work_ + "/deep-ran";
  std::filesystem::create_directories(work_ + "/evil");
  CmdResult r =
      Run(absl::StrCat(helper_, " deep-exec ", work_, "/evil /usr/bin/touch ", marker, " 1", chain,
                       " payload; echo after"),
          {"--intent", "e-repo", "--param", "repo=" + repo, "--param", "helper=" + helper_});
  EXPECT_FALSE(Exists(marker)) << "the program at the end of the deep path ran";
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  json ev = Find(Events(r), [](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("comm", "") == "payload";
  });
  ASSERT_FALSE(ev.is_null()) << "no exec of the payload";
  // What the kernel could walk: the repository-looking tail.
  EXPECT_EQ(ev["process"].value("exe", "").rfind(repo + "/d/", 0), 0u) << ev.dump();
  EXPECT_EQ(ev["process"]["unresolved"], true);
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "killed");
  EXPECT_EQ(ev["finding"]["rule"], "e-repo/exec.unresolved");
}

// Signal ownership handed to writd: F_SETOWN(writd) + F_SETSIG(SIGKILL) + O_ASYNC on a pipe, then a
// write, would have the kernel SIGKILL writd. F_SETOWN of a protected pid is refused by the
// launcher's filter, F_SETOWN_EX and FIOSETOWN (their owner behind a pointer) outright: writd
// lives, a self finding.
TEST_F(Evasion, SignalOwnershipAimedAtWritdIsPreventedAndWritdLives) {
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
// the caller never reaches F_SETSIG or the write, and its pipe dies with it.
TEST_F(Evasion, SignalOwnershipWithoutTheFilterKillsTheCallerFirst) {
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
  EXPECT_EQ(ev["outcome"], "killed_after");
}

// Joining writd's process group (kill(0) would then signal it) is refused and reported.
TEST_F(Evasion, JoiningWritdsProcessGroupIsPrevented) {
  const pid_t pgid = getpgid(writd_->pid());
  CmdResult r = RunFiles(absl::StrCat(helper_, " setpgid ", pgid, "; sleep 5; echo after"));
  ASSERT_TRUE(Alive(writd_->pid())) << "writd died";
  ExpectSelfPrevented(r, Events(r), "setpgid", "writd");
}

// Loading a kernel module (or a kernel to kexec into) from a task: refused by the filter. The
// finding needs the syscall's tracepoint, which a kernel without module (or kexec) support does not
// have.
TEST_F(Evasion, ModuleLoadingAndKexecAreRefused) {
  CmdResult r =
      RunFiles(absl::StrCat(helper_, " finit-module; ", helper_, " kexec-file-load; echo after"));
  // `writ status` names each hook: "self (syscalls/sys_exit_finit_module)  active" or why not.
  const std::string status = writd_->Writ({"status"}).out;
  const size_t at = status.find("self (syscalls/sys_exit_finit_module)");
  ASSERT_NE(at, std::string::npos) << status;
  const std::string line = status.substr(at, status.find('\n', at) - at);
  const bool reported = absl::EndsWith(line, " active");
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

std::set<pid_t> Threads(pid_t pid) {
  std::set<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    out.insert(std::atoi(e.path().filename().c_str()));
  }
  return out;
}

// Each of these needs a writd of its own (enforce mode, no intents): they race, kill and restart it.
class EvasionStandalone : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    WritdInstance::Options o;
    o.mode = "enforce";
    // A root agent with no rules: what these tests attack is writd itself.
    o.policies["root.yaml"] =
        "apiVersion: writ.dev/v1\nkind: Intent\nname: root-any\nrun_as_root: true\n"
        "on_violation: [alert, kill]\n";
    ASSERT_TRUE(w_.Start(o).ok()) << w_.log();
    threads_ = RungActive(w_.Writ({"status"}).out, "self-threads: ");
  }
  WritdInstance w_;
  // The kernel resolves a thread id to its process (bpf_task_from_pid, 6.2+). Without it (Debian
  // 12's 6.1, the VM tier) only writd's and the guardian's process ids are recognised as theirs: a
  // signal to another writd thread is refused by the launcher's filter all the same, but not
  // reported, and the fallback (no filter) does not see it at all.
  bool threads_ = true;
};

// Signals, pidfds and tracing aimed at writd (any thread that existed when the task started), its
// guardian, and kill(-1): refused by the launcher's filter even for a root agent; writd lives on. A task
// without an intent gets the default response: kill.
TEST_F(EvasionStandalone, RootAgentCannotSignalOrTraceWritd) {
  const pid_t pid = w_.pid();
  int guardian = 0;
  std::ifstream(w_.dir() + "/run/guardian.pid") >> guardian;
  ASSERT_GT(guardian, 0);
  // The first thread writd started (a sink or the control acceptor: it lives as long as writd), not a
  // short-lived control-connection thread.
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
      {absl::StrCat("kill ", thread, " 9"), "kill", "writd"},  // kill(2) of a thread id kills the process
      {absl::StrCat("tkill ", thread, " 9"), "tkill", "writd"},
      {absl::StrCat("kill ", guardian, " 9"), "kill", "guardian"},
      {"kill -1 0", "kill", "all"},  // signal 0: were the filter to fail, nothing would die
      {absl::StrCat("ptrace ", pid), "ptrace", "writd"},
      {absl::StrCat("pidfd ", pid), "pidfd_open", "writd"},
  };
  for (const Attempt& a : attempts) {
    SCOPED_TRACE(a.args);
    CmdResult r = w_.Writ({"run", "--agent", kAgent, "--allow-root", "--intent", "root-any", "--", "/bin/sh", "-c",
                           absl::StrCat(EVASION_HELPER, " ", a.args, "; sleep 5; echo after")});
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


// `writ --socket S ARGS...` started inside process group `pgid` (output to files under dir).
CmdResult WritInGroup(const WritdInstance& w, pid_t pgid, const std::vector<std::string>& args) {
  const std::string out = w.dir() + "/group.out", err = w.dir() + "/group.err";
  pid_t pid = fork();
  if (pid == 0) {
    if (setpgid(0, pgid) != 0) _exit(126);
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<std::string> argv = {WRIT_BIN, "--socket", w.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> v;
    for (auto& a : argv) v.push_back(a.data());
    v.push_back(nullptr);
    execv(WRIT_BIN, v.data());
    _exit(127);
  }
  CmdResult r;
  int status = 0;
  for (int i = 0; i < 400 && waitpid(pid, &status, WNOHANG) == 0; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

// A launcher inside writd's process group (a script that started writd and `writ run` without job
// control): the task still gets a session and process group of its own (DropPrivileges' setsid), so
// kill(0, SIGKILL) from it reaches its own processes only, with the filter and without it. Joining
// writd's group afterwards is refused (JoiningWritdsProcessGroupIsPrevented).
TEST_F(EvasionStandalone, KillOfTheOwnGroupNeverReachesWritdsGroup) {
  const pid_t pgid = getpgid(w_.pid());
  ASSERT_GT(pgid, 0);
  for (const bool filter : {true, false}) {
    std::vector<std::string> args = {"run", "--agent", kAgent, "--allow-root", "--intent", "root-any"};
    if (!filter) args.push_back("--no-seccomp");
    args.insert(args.end(), {"--", "/bin/sh", "-c",
                             absl::StrCat(EVASION_HELPER, " pgid; ", EVASION_HELPER,
                                          " kill 0 9; echo after")});
    CmdResult r = WritInGroup(w_, pgid, args);
    SCOPED_TRACE(filter ? "with the filter" : "without the filter");
    ASSERT_THAT(r.out, HasSubstr("pgid ")) << r.out << r.err;
    const pid_t task_pgid = std::atoi(r.out.substr(r.out.find("pgid ") + 5).c_str());
    EXPECT_GT(task_pgid, 0);
    EXPECT_NE(task_pgid, pgid) << "the task started in writd's process group";
    EXPECT_THAT(r.out, Not(HasSubstr("after"))) << "kill(0, SIGKILL) did not reach the task's own group";
    const std::string task = TaskIdFrom(r.err);
    ASSERT_FALSE(w_.WaitForEvent([&](const json& e) {
                     return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
                   }).is_null());
    for (const auto& e : w_.TaskEvents(task)) EXPECT_NE(e.value("kind", ""), "self") << e.dump();
    ASSERT_TRUE(Alive(w_.pid())) << "writd died";
  }
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

// Known limit: the filter names writd's threads as they were when the task started. A thread writd
// starts later (here: the one serving a `writ tail` connection) is not in it, so tkill of it is not
// refused; the BPF fallback kills the caller at syscall entry (outcome killed_after). Signal 0 here, so
// that writd survives the proof; with SIGKILL it would not (see the next test).
TEST_F(EvasionStandalone, WritdThreadStartedAfterTheTaskIsOnlyCoveredByTheFallbackKnownLimit) {
  const std::string d = w_.dir();
  pid_t run = w_.WritAsync({"run", "--agent", kAgent, "--allow-root", "--intent", "root-any", "--", "/bin/sh", "-c",
                            absl::StrCat("echo up > ", d, "/up; while [ ! -s ", d,
                                         "/tid ]; do sleep 0.05; done; ", EVASION_HELPER, " tkill $(cat ",
                                         d, "/tid) 0; sleep 5; echo after")},
                           "run");
  for (int i = 0; i < 200 && !std::filesystem::exists(d + "/up"); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(std::filesystem::exists(d + "/up")) << w_.log();
  const std::set<pid_t> at_start = Threads(w_.pid());  // a superset of what the placement reply named
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
  if (!threads_) {
    // Kernels < 6.2: the thread is not recognised as writd's at all; tkill(tid, 0) runs,
    // unreported.
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
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("tkill ok")));  // killed before it returned to user mode
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  json ev = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "self" && e["agent"].value("task_id", "") == task;
  });
  ASSERT_FALSE(ev.is_null()) << w_.log();
  EXPECT_EQ(ev["syscall"]["name"], "tkill");
  EXPECT_EQ(ev["syscall"]["target"], "writd");
  EXPECT_EQ(ev["syscall"]["target_pid"], w_.pid());
  EXPECT_EQ(ev["syscall"]["result"], 0);  // not refused: limit changed? update docs/threat-model.md
  EXPECT_EQ(ev["outcome"], "killed_after");
  EXPECT_EQ(kill(w_.pid(), 0), 0);
  kill(tail, SIGTERM);
  (void)w_.WaitAsync(tail, "tail");
  EXPECT_EQ(w_.Stop(), 0) << w_.log();
}

// Known limit: a process without the filter (writ run --no-seccomp here; in general anything the
// launcher did not start) can still kill -9 writd, because a tracepoint cannot refuse a syscall. The
// caller is SIGKILLed at syscall entry, but the rest of the task is not (its kill response is writd's to
// run); in-kernel enforcement goes on (the guardian holds the programs), and the finding is reported by
// the next writd from the pinned ring buffer (outcome killed_after).
TEST_F(EvasionStandalone, WithoutTheFilterKillOfWritdIsAKnownLimitReportedAfterRestart) {
  const pid_t pid = w_.pid();
  CmdResult r = w_.Writ({"run", "--agent", kAgent, "--allow-root", "--intent", "root-any", "--no-seccomp", "--", "/bin/sh", "-c",
                         absl::StrCat(EVASION_HELPER, " kill ", pid, " 9; echo after")});
  // The caller died at syscall entry (no "kill ok"); the rest of the task lives on, because the task's
  // kill response is writd's to run and writd is dead.
  EXPECT_THAT(r.out, Not(HasSubstr("kill ok")));
  EXPECT_THAT(r.out, HasSubstr("after")) << r.err;
  for (int i = 0; i < 50 && kill(pid, 0) == 0; i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(w_.Stop(), 137) << "writd survived SIGKILL from a task without the filter: update the limit";
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
}  // namespace writ::testlib
