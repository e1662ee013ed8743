// The control plane against the agent (issue 16): a real writd in enforce mode, agents run as an
// unprivileged user (and as root where a test says so), and the task attacking writd's own socket
// with control_attack (control_attack.c) and with `writ` itself. Each refusal from inside a task
// must be a `self` finding that runs the task's responses; nothing of what was asked may happen.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgent[] = "spiffe://example.org/agent/coder";
constexpr char kAdminId[] = "spiffe://example.org/agent/admin";

constexpr char kIntents[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: agent
files:
  deny: [/etc/shadow]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: rooted
run_as_root: true
files:
  deny: [/etc/shadow]
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: watch
on_violation: [alert]
mode: monitor
)";

uint32_t UidOf(const char* user) {
  struct passwd* pw = getpwnam(user);
  return pw ? pw->pw_uid : 0;
}

class Control : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    writd_ = new WritdInstance();
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["control.yaml"] = kIntents;
    start_status_ = new absl::Status(writd_->Start(o));
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
    if (geteuid() != 0) GTEST_SKIP() << "control e2e needs root: writd loads BPF programs";
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
  }

  // `writ run` of a shell script as the test agent (or as root with root = true).
  static CmdResult Run(const std::string& intent, const std::string& script, bool root = false) {
    std::vector<std::string> args = {"run", "--agent", kAgent, "--intent", intent};
    if (root) args.push_back("--allow-root");
    args.insert(args.end(), {"--", "/bin/sh", "-c", script});
    return writd_->Writ(args, std::chrono::seconds(30));
  }
  // `writ ARGS` run by `user` outside any task (setpriv: that user's uid, gid and groups).
  static CmdResult WritAs(const char* user, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     absl::StrCat("--reuid=", user),
                                     absl::StrCat("--regid=", user),
                                     "--init-groups",
                                     "--",
                                     WRIT_BIN,
                                     "--socket",
                                     writd_->socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, std::chrono::seconds(30));
  }
  // The self finding the control service emitted for `task`, or null json.
  static json SelfFinding(const std::string& task, const std::string& request) {
    return writd_->WaitForEvent([&](const json& e) {
      return e["kind"] == "self" && e["agent"]["task_id"] == task &&
             e["syscall"].value("name", "") == "control:" + request;
    });
  }
  static int TaskStarts() {
    int n = 0;
    for (const json& e : writd_->Events()) n += e["kind"] == "task_start";
    return n;
  }
  static std::string Attack() { return CONTROL_ATTACK; }
  static std::string Writ() {
    std::string s;
    for (const auto& a : WritInTaskArgv()) absl::StrAppend(&s, a, " ");
    return absl::StrCat(s, "--socket ", writd_->socket());
  }

  static WritdInstance* writd_;
  static absl::Status* start_status_;
};
WritdInstance* Control::writd_ = nullptr;
absl::Status* Control::start_status_ = nullptr;

// The agent runs as the user it was launched for, without privileges it could use against writd:
// no_new_privs, an empty capability bounding set, a session of its own, and the Workload API of the
// writd that placed it in its environment.
TEST_F(Control, AgentsRunUnprivilegedInASessionOfTheirOwn) {
  CmdResult r = Run("watch",
                    "id -u; grep -E '^(NoNewPrivs|CapBnd|CapEff):' /proc/self/status; "
                    "echo sid=$(cut -d' ' -f6 /proc/$$/stat); echo sid=$$; "
                    "echo sock=$SPIFFE_ENDPOINT_SOCKET");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(UidOf(WRIT_TEST_AGENT_USER), "\n")));
  EXPECT_THAT(r.out, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(r.out, HasSubstr("CapBnd:\t0000000000000000"));
  EXPECT_THAT(r.out, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("sock=unix://", writd_->dir(), "/run/workload.sock")));
  // The shell's session (field 6 of its stat) is its own pid: the same "sid=" line twice.
  const size_t first = r.out.find("sid="), second = r.out.find("sid=", first + 1);
  ASSERT_NE(second, std::string::npos);
  EXPECT_EQ(r.out.substr(first, r.out.find('\n', first) - first),
            r.out.substr(second, r.out.find('\n', second) - second));
  std::string task = TaskIdFrom(r.err);
  json start = writd_->WaitForEvent(
      [&](const json& e) { return e["kind"] == "task_start" && e["agent"]["task_id"] == task; });
  ASSERT_FALSE(start.is_null());
  EXPECT_EQ(start["task"].value("run_user", ""), WRIT_TEST_AGENT_USER);
  EXPECT_EQ(start["task"].value("run_uid", 0u), UidOf(WRIT_TEST_AGENT_USER));
  EXPECT_FALSE(start["task"].contains("root"));
}

TEST_F(Control, RootIsOptedInTwiceOnTheCommandLineAndInTheIntent) {
  // Root itself must say whom the agent runs as (this bypasses the fixture's --user).
  CmdResult r = RunCommand(
      {WRIT_BIN, "--socket", writd_->socket(), "run", "--agent", kAgent, "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--user NAME"));
  r = Run("agent", "id -u", /*root=*/true);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("does not allow root (run_as_root: true)"));
  r = Run("rooted", "id -u", /*root=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0\n");
  // An operator who is not root cannot ask for root at all.
  r = WritAs(WRIT_TEST_AGENT_USER,
             {"run", "--agent", kAgent, "--intent", "rooted", "--allow-root", "--", "/bin/true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("only root"));
}

// The forged task of issue 16, for an unprivileged agent and for a root one: a process inside the
// task asks writd for a new top-level task with an admin identity and no intent.
TEST_F(Control, AForgedTopLevelTaskIsRefusedReportedAndEndsTheTask) {
  for (bool root : {false, true}) {
    SCOPED_TRACE(root ? "root task" : "unprivileged task");
    const int starts = TaskStarts();
    CmdResult r =
        Run(root ? "rooted" : "agent",
            absl::StrCat(Attack(), " forge ", writd_->socket(), " ", kAdminId, "; sleep 5"), root);
    // The task's kill response ends it, usually before the refusal reaches the attacker.
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("forge code=0")));
    std::string task = TaskIdFrom(r.err);
    json f = SelfFinding(task, "create_task");
    ASSERT_FALSE(f.is_null()) << writd_->log();
    EXPECT_EQ(f["outcome"], "prevented");
    EXPECT_THAT(f["finding"]["frameworks"].dump(), HasSubstr("OWASP-ASI10"));
    EXPECT_THAT(f["finding"]["frameworks"].dump(), HasSubstr("OWASP-ASI03"));
    EXPECT_EQ(TaskStarts(), starts + 1) << "no task but the agent's own was created";
  }
}

// The same, with the connecting process gone before the request, sent by its child. Either writd
// identified the peer when it accepted the connection (from inside the task: a finding), or the
// peer had already exited then and the connection is refused as unidentifiable (counted): never is
// the request attributed to whoever holds the pid later, nor taken as coming from outside every
// task.
TEST_F(Control, AConnectionHandedToAChildKeepsTheIdentityItWasAcceptedWith) {
  for (int round = 0; round < 5; round++) {
    const int starts = TaskStarts();
    CmdResult r = Run("watch", absl::StrCat(Attack(), " forge-orphan ", writd_->socket(), " ",
                                            kAdminId, "; sleep 1"));
    ASSERT_THAT(r.out, HasSubstr("forge-orphan code=7")) << r.out << r.err;
    EXPECT_EQ(TaskStarts(), starts + 1);
    if (absl::StrContains(r.out, "cannot tell who it is")) {
      EXPECT_THAT(writd_->Writ({"status"}).out, HasSubstr("control_unidentified_peers"));
    } else {
      json f = SelfFinding(TaskIdFrom(r.err), "create_task");
      ASSERT_FALSE(f.is_null()) << r.out;
      EXPECT_EQ(f["outcome"], "prevented");  // monitor mode: refused all the same, no response run
    }
  }
}

// Only the connection that created a task starts it: neither the task itself nor another operator
// connection can place a process into a task.
TEST_F(Control, OnlyTheLaunchersConnectionPlacesAProcess) {
  CmdResult r = Run("watch", absl::StrCat("sleep 20 & ", Attack(), " place ", writd_->socket(),
                                          " $WRIT_TASK_ID $!; kill $!"));
  EXPECT_THAT(r.out, HasSubstr("place code=7")) << r.out << r.err;
  ASSERT_FALSE(SelfFinding(TaskIdFrom(r.err), "task_started").is_null());
  // Root outside any task, on a connection of its own: refused too (no finding: no task asked).
  pid_t bg = writd_->WritAsync(
      {"run", "--agent", kAgent, "--intent", "watch", "--", "/bin/sleep", "20"}, "placed");
  std::string task;
  for (int i = 0; i < 100 && task.empty(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    task = TaskIdFrom(Slurp(writd_->dir() + "/placed.err"));
  }
  ASSERT_FALSE(task.empty());
  CmdResult p = RunCommand({Attack(), "place", writd_->socket(), task, std::to_string(getpid())});
  EXPECT_THAT(p.out, HasSubstr("place code=7")) << p.out;
  EXPECT_THAT(Slurp(absl::StrCat(writd_->cgroup_root(), "/", task, "/cgroup.procs")),
              Not(HasSubstr(absl::StrCat(getpid(), "\n"))));
  EXPECT_EQ(writd_->Writ({"kill", task}).exit_code, 0);
  writd_->WaitAsync(bg, "placed");
}

// Inside a task `writ` is no admin tool, whatever the task's uid: kill, approvals and reload are
// refused and reported; status shows the task itself only.
TEST_F(Control, ATaskCannotKillApproveOrReloadAndSeesOnlyItself) {
  pid_t other = writd_->WritAsync(
      {"run", "--agent", kAgent, "--intent", "watch", "--", "/bin/sleep", "20"}, "other");
  std::string other_id;
  for (int i = 0; i < 100 && other_id.empty(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    other_id = TaskIdFrom(Slurp(writd_->dir() + "/other.err"));
  }
  ASSERT_FALSE(other_id.empty());
  CmdResult s = Run("watch", Writ() + " status");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_THAT(s.out, HasSubstr(TaskIdFrom(s.err)));
  EXPECT_THAT(s.out, Not(HasSubstr(other_id)));
  EXPECT_THAT(s.out, Not(HasSubstr("tp_btf")));  // no map of the hooks for a task
  for (bool root : {false, true}) {
    SCOPED_TRACE(root ? "root task" : "unprivileged task");
    CmdResult r =
        Run(root ? "rooted" : "agent", absl::StrCat(Writ(), " kill ", other_id, "; sleep 5"), root);
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_FALSE(SelfFinding(TaskIdFrom(r.err), "kill").is_null());
  }
  CmdResult rl = Run("watch", Writ() + " policy reload");
  EXPECT_NE(rl.exit_code, 0);
  EXPECT_FALSE(SelfFinding(TaskIdFrom(rl.err), "reload").is_null());
  // The other task is untouched.
  CmdResult st = writd_->Writ({"status"});
  EXPECT_THAT(st.out, HasSubstr(other_id));
  EXPECT_EQ(writd_->Writ({"kill", other_id}).exit_code, 0);
  writd_->WaitAsync(other, "other");
}

// An operator in the control group launches agents without root, and is no admin; a user outside
// the group does not reach the socket at all.
TEST_F(Control, OperatorsLaunchWithoutRootButOnlyAdminsKill) {
  CmdResult r = WritAs(WRIT_TEST_AGENT_USER,
                       {"run", "--agent", kAgent, "--intent", "watch", "--", "/usr/bin/id", "-u"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(UidOf(WRIT_TEST_AGENT_USER), "\n"));
  pid_t bg = writd_->WritAsync(
      {"run", "--agent", kAgent, "--intent", "watch", "--", "/bin/sleep", "20"}, "victim");
  std::string task;
  for (int i = 0; i < 100 && task.empty(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    task = TaskIdFrom(Slurp(writd_->dir() + "/victim.err"));
  }
  ASSERT_FALSE(task.empty());
  r = WritAs(WRIT_TEST_AGENT_USER, {"kill", task});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("admins"));
  r = WritAs(WRIT_TEST_OTHER_USER, {"status"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("ermission denied"));
  EXPECT_EQ(writd_->Writ({"kill", task}).exit_code, 0);
  writd_->WaitAsync(bg, "victim");
}

// An unprivileged agent cannot have writd signalled through a file's owner (fcntl F_SETOWN +
// F_SETSIG(SIGKILL) + O_ASYNC): the kernel checks the signal against the setter's credentials.
TEST_F(Control, AnUnprivilegedAgentCannotKillWritdThroughSigio) {
  CmdResult r = Run("watch", absl::StrCat("/usr/bin/python3 -c '\n"
                                          "import fcntl, os, signal\n"
                                          "r, w = os.pipe()\n"
                                          "fcntl.fcntl(r, fcntl.F_SETOWN, ",
                                          writd_->pid(),
                                          ")\n"
                                          "fcntl.fcntl(r, 10, signal.SIGKILL)\n"  // F_SETSIG
                                          "fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\n"
                                          "os.write(w, b\"x\")\n"
                                          "print(\"written\")'"));
  // The kernel would not deliver SIGIO across uids anyway; the launcher's filter refuses the
  // F_SETOWN first (the same for a root agent: Evasion.SignalOwnershipAimedAtWritdIsPrevented...),
  // reports it as a self finding and the task's response kills it before the write.
  EXPECT_THAT(r.out, Not(HasSubstr("written"))) << r.err;
  const std::string task = TaskIdFrom(r.err);
  json self = writd_->WaitForEvent([&](const json& e) {
    return e["kind"] == "self" && e["agent"]["task_id"] == task &&
           e["syscall"].value("name", "") == "fcntl";
  });
  ASSERT_FALSE(self.is_null()) << writd_->log();
  EXPECT_EQ(self["syscall"].value("target", ""), "writd");
  EXPECT_EQ(self["outcome"], "prevented");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(kill(writd_->pid(), 0), 0) << "writd was killed";
  EXPECT_EQ(writd_->Writ({"status"}).exit_code, 0);
}

}  // namespace
}  // namespace writ::testlib
