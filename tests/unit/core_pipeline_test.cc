// Pipeline: every rung of the enforcement ladder as the pipeline reports and enacts it, from
// ring-buffer records built like the kernel's (testlib/record_builder.h), with the task actions and
// the output faked (daemon_fakes.h): allowed, prevented (cgroup-bpf, lsm), killed, killed_after
// (kernel and userspace), stopped for approval, would_deny, not judged, self-protection. No root
// needed.
#include <fcntl.h>

#include <string>
#include <vector>

#include "daemon/pipeline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "testlib/record_builder.h"
#include "unit/daemon_fakes.h"

namespace writ::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testlib::RecordBuilder;

constexpr uint64_t kCgroup = 4242;
constexpr uint32_t kPid = 3999991;  // no such process: /proc lookups find nothing
constexpr uint64_t kStart = 77;

constexpr const char* kIntent = R"(apiVersion: writ.dev/v1
kind: Intent
name: t
exec:
  allow: [/usr/bin/git, /usr/bin/ls]
  deny: [/usr/bin/sudo]
files:
  read: ["/repo/**"]
  deny: [/etc/shadow]
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [8080]}]
approval:
  - {exec: /usr/bin/git, args: [push, "**"], timeout: 5m}
on_violation: [alert, kill, revoke]
)";

std::shared_ptr<const intent::CompiledIntent> Compiled(const std::string& yaml) {
  auto set = intent::LoadPolicyText(yaml, "t.yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  auto ci = intent::Compile(set->intents()[0], {});
  EXPECT_TRUE(ci.ok()) << ci.status();
  return *ci;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { Use(identity::TaskMode::kEnforce); }

  void Use(identity::TaskMode mode, const std::string& yaml = kIntent) {
    if (task_) registry_.Remove(task_->id);
    task_ = std::make_shared<identity::Task>();
    task_->id = "t-1";
    task_->spiffe_id = "spiffe://example.org/agent";
    task_->cgroup_id = kCgroup;
    task_->slot = 1;
    task_->mode = mode;
    task_->state = identity::TaskState::kRunning;
    task_->compiled = Compiled(yaml);
    ASSERT_TRUE(registry_.Add(task_).ok());
  }

  // The event the pipeline emitted for the record, and what it did, in order.
  v1::Event Run(RecordBuilder b) {
    log_.clear();
    out_.events.clear();
    auto rec = b.Cgroup(kCgroup).Pid(kPid).StartNs(kStart).Build();
    pipeline_.OnRecord(rec.data(), rec.size());
    for (const v1::Event& e : out_.events) {
      if (e.id().rfind("s-", 0) != 0) return e;  // the record's own event, not a synthetic one
    }
    return v1::Event();
  }
  static RecordBuilder Exec(const std::string& exe, std::vector<std::string> args = {}) {
    return RecordBuilder::Exec().Exe(exe).Filename(exe).Args(args);
  }
  static RecordBuilder Open(const std::string& path, int32_t result = 3) {
    return RecordBuilder::Open().OpenPath(path).OpenFlags(O_RDONLY).Result(result);
  }

  std::vector<std::string> log_;
  identity::TaskRegistry registry_{16};
  identity::ProcessTable procs_{1024};
  Approvals approvals_;
  testing::FakeTasks tasks_{&log_};
  testing::FakeOutput out_{&log_};
  Pipeline pipeline_{
      Pipeline::Deps{registry_, procs_, approvals_, tasks_, out_, creds::DefaultRedactor()}, 0,
      "test"};
  std::shared_ptr<identity::Task> task_;
};

TEST_F(PipelineTest, AllowedExecRunsUntouched) {
  v1::Event ev = Run(Exec("/usr/bin/ls", {"ls"}));
  EXPECT_EQ(ev.verdict(), "allow");
  EXPECT_EQ(ev.outcome(), "allowed");
  EXPECT_THAT(log_, ElementsAre("emit exec"));
  EXPECT_EQ(ev.agent().task_id(), "t-1");
}

TEST_F(PipelineTest, AllowedExecTheKernelStoppedIsContinued) {
  v1::Event ev = Run(Exec("/usr/bin/git", {"git", "status"}).Flags(WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.outcome(), "allowed");
  EXPECT_THAT(log_, ElementsAre("signal 3999991 CONT", "emit exec"));
}

TEST_F(PipelineTest, ConnectRefusedByCgroupHookIsPreventedThenResponsesRun) {
  v1::Event ev =
      Run(RecordBuilder::Connect().Dst("10.0.0.1", 443).Result(-1).Flags(WRIT_F_KERNEL_DENY));
  EXPECT_EQ(ev.verdict(), "violation");
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_EQ(ev.enforcement(), "cgroup-bpf");
  EXPECT_EQ(ev.finding().rule(), "t/network.connect.default");
  // Nothing to kill (the kernel refused it); revocation at once, responses after the event (cause
  // before effect).
  EXPECT_THAT(log_,
              ElementsAre("mark-revoked t-1", "emit connect", "responses t-1 alert,kill,revoke"));
}

TEST_F(PipelineTest, LsmRefusalIsPrevented) {
  v1::Event ev = Run(Exec("/usr/bin/sudo", {"sudo", "id"}).Flags(WRIT_F_KERNEL_DENY | WRIT_F_LSM));
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_EQ(ev.enforcement(), "lsm");
  EXPECT_EQ(ev.finding().rule(), "t/exec.deny[0]");
}

// lsm/file_open reports its own refusal (the resolved path, result -EPERM, KERNEL_DENY|LSM); an
// open that failed with EPERM for any other reason is not the LSM's doing, whatever rung is loaded.
TEST_F(PipelineTest, OpenRefusedByTheLsmHookIsPrevented) {
  v1::Event ev = Run(Open("/etc/shadow", -EPERM).Flags(WRIT_F_KERNEL_DENY | WRIT_F_LSM));
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_EQ(ev.enforcement(), "lsm");
}

TEST_F(PipelineTest, OpenFailingWithEpermWithoutTheLsmFlagIsNotCalledPrevented) {
  v1::Event ev = Run(Open("/etc/shadow", -EPERM));
  EXPECT_EQ(ev.verdict(), "violation");  // the attempt is the finding
  EXPECT_NE(ev.outcome(), "prevented");
  EXPECT_NE(ev.enforcement(), "lsm");
}

TEST_F(PipelineTest, ExecKilledByTheKernelIsKilled) {
  v1::Event ev = Run(Exec("/usr/bin/sudo", {"sudo", "id"}).Flags(WRIT_F_KERNEL_DENY));
  EXPECT_EQ(ev.outcome(), "killed");
  EXPECT_EQ(ev.enforcement(), "kernel-signal");
  EXPECT_THAT(log_,
              ElementsAre("mark-revoked t-1", "emit exec", "responses t-1 alert,kill,revoke"));
}

TEST_F(PipelineTest, ExecStoppedByTheKernelAndDeniedIsKilledBeforeItRuns) {
  v1::Event ev = Run(Exec("/usr/bin/curl", {"curl"}).Flags(WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.finding().rule(), "t/exec.default");
  EXPECT_EQ(ev.outcome(), "killed");
  EXPECT_EQ(ev.enforcement(), "kernel-signal");
  // The task dies before the acting process, so the agent's shell cannot run its next command.
  EXPECT_THAT(log_, ElementsAre("kill-now t-1", "signal 3999991 KILL", "mark-revoked t-1",
                                "emit exec", "responses t-1 alert,kill,revoke"));
}

TEST_F(PipelineTest, OpenKilledAtSyscallExitByTheKernelIsKilledAfter) {
  v1::Event ev = Run(Open("/etc/shadow").Flags(WRIT_F_KERNEL_DENY));
  EXPECT_EQ(ev.outcome(), "killed_after");
  EXPECT_EQ(ev.enforcement(), "kernel-signal");
  EXPECT_EQ(ev.finding().rule(), "t/files.deny[0]");
}

TEST_F(PipelineTest, OpenJudgedInUserspaceIsKilledAfterByWritd) {
  v1::Event ev = Run(Open("/home/alice/notes"));
  EXPECT_EQ(ev.finding().rule(), "t/files.read.default");
  EXPECT_EQ(ev.outcome(), "killed_after");
  EXPECT_EQ(ev.enforcement(), "userspace");
  EXPECT_THAT(log_, ElementsAre("kill-now t-1", "signal 3999991 KILL", "mark-revoked t-1",
                                "emit open", "responses t-1 alert,kill,revoke"));
}

TEST_F(PipelineTest, FailedOpenIsNotJudgedByTheAllowListDefault) {
  v1::Event ev = Run(Open("/home/alice/notes", -ENOENT));
  EXPECT_EQ(ev.verdict(), "allow");
  EXPECT_THAT(log_, ElementsAre("emit open"));
}

TEST_F(PipelineTest, ApprovalStopsTheExecFreezesTheTaskAndAsks) {
  v1::Event ev = Run(Exec("/usr/bin/git", {"git", "push", "origin"}).Flags(WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.verdict(), "needs_approval");
  EXPECT_EQ(ev.outcome(), "stopped");
  EXPECT_EQ(ev.enforcement(), "kernel-signal");
  EXPECT_THAT(log_, ElementsAre("freeze t-1", "emit approval_request", "emit exec"));
  ASSERT_EQ(approvals_.size(), 1u);
  EXPECT_EQ(approvals_.List()[0].pid, kPid);
  EXPECT_EQ(out_.events[0].approval().action_hash(), ActionHash(ev));
}

TEST_F(PipelineTest, ApprovalOfAnExecTheKernelDidNotStopStopsItFromUserspace) {
  v1::Event ev = Run(Exec("/usr/bin/git", {"git", "push", "origin"}));
  EXPECT_EQ(ev.outcome(), "stopped");
  EXPECT_EQ(ev.enforcement(), "userspace");
  EXPECT_THAT(
      log_, ElementsAre("signal 3999991 STOP", "freeze t-1", "emit approval_request", "emit exec"));
}

TEST_F(PipelineTest, AnActionGrantedForTheTaskRuns) {
  v1::Event first = Run(Exec("/usr/bin/git", {"git", "push", "origin"}).Flags(WRIT_F_KERNEL_STOP));
  approvals_.Grant("t-1", ActionHash(first));
  v1::Event ev = Run(Exec("/usr/bin/git", {"git", "push", "origin"}).Flags(WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.verdict(), "allow");
  EXPECT_EQ(ev.outcome(), "allowed");
  EXPECT_FALSE(ev.has_finding());
  EXPECT_THAT(log_, ElementsAre("signal 3999991 CONT", "emit exec"));
}

TEST_F(PipelineTest, MonitorModeWouldDenyAndDoesNothing) {
  Use(identity::TaskMode::kMonitor);
  v1::Event ev = Run(Open("/etc/shadow"));
  EXPECT_EQ(ev.verdict(), "violation");
  EXPECT_EQ(ev.outcome(), "would_deny");
  EXPECT_THAT(log_, ElementsAre("emit open"));
}

TEST_F(PipelineTest, RecordModeJudgesNothing) {
  Use(identity::TaskMode::kRecord);
  v1::Event ev = Run(Open("/etc/shadow"));
  EXPECT_EQ(ev.verdict(), "");
  EXPECT_EQ(ev.kind(), "open");
  EXPECT_THAT(log_, ElementsAre("emit open"));
}

TEST_F(PipelineTest, SelfProtectionRefusedBySeccompIsPreventedAndTheTasksResponsesRun) {
  v1::Event ev = Run(RecordBuilder::Self()
                         .SelfCall(62 /* kill */, -1, WRIT_SELF_WRITD, 1, 1, 9)
                         .Flags(WRIT_F_SECCOMP));
  EXPECT_EQ(ev.verdict(), "violation");
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_EQ(ev.enforcement(), "seccomp");
  EXPECT_THAT(ev.finding().frameworks(), ::testing::Contains("OWASP-ASI10"));
  EXPECT_THAT(log_,
              ElementsAre("mark-revoked t-1", "emit self", "responses t-1 alert,kill,revoke"));
}

TEST_F(PipelineTest, RecordOfAnUnknownTaskIsCountedNotEmitted) {
  log_.clear();
  auto rec = Exec("/usr/bin/ls").Cgroup(999).Pid(kPid).Build();
  pipeline_.OnRecord(rec.data(), rec.size());
  EXPECT_THAT(log_, IsEmpty());
  EXPECT_EQ(pipeline_.counters().unattributed.load(), 1u);
}

TEST_F(PipelineTest, UndecodableRecordIsCounted) {
  auto rec = Exec("/usr/bin/ls").Version(WRIT_ABI_VERSION + 1).Cgroup(kCgroup).Build();
  pipeline_.OnRecord(rec.data(), rec.size());
  EXPECT_EQ(pipeline_.counters().decode_errors.load(), 1u);
}

TEST_F(PipelineTest, ProcessTableFollowsExecAndExit) {
  Run(Exec("/usr/bin/ls", {"ls"}));
  EXPECT_EQ(procs_.published_size(), 1u);
  EXPECT_EQ(task_->live_processes.load(), 1);
  v1::Event ev = Run(RecordBuilder::Exit().WaitStatus(0));
  EXPECT_EQ(ev.process().exe(), "/usr/bin/ls");  // the exit names what the process ran
  EXPECT_EQ(procs_.published_size(), 0u);
  EXPECT_EQ(task_->live_processes.load(), 0);
}

// ---- containment: renames, loaders, exe paths cut short, unix sockets, datagram sends
// ----------------

constexpr const char* kComp = R"(apiVersion: writ.dev/v1
kind: Intent
name: c
files:
  deny: ["**/.env", "**/id_*"]
on_violation: [alert, kill]
)";

TEST_F(PipelineTest, RenameTheKernelKilledIsKilledAfterWithTheRuleOfTheOldName) {
  Use(identity::TaskMode::kEnforce, kComp);
  v1::Event ev = Run(RecordBuilder::Link(82, "/w/.env", "/w/e.txt")
                         .Flags(WRIT_F_KERNEL_DENY | WRIT_F_NEEDS_VERDICT)
                         .LinkFlags(WRIT_LINK_HIT_OLD | WRIT_LINK_TAINTED));
  EXPECT_EQ(ev.kind(), "link");
  EXPECT_EQ(ev.verdict(), "violation");
  EXPECT_EQ(ev.outcome(), "killed_after");
  EXPECT_EQ(ev.enforcement(), "kernel-signal");
  EXPECT_EQ(ev.finding().rule(), "c/files.deny[0]");
  EXPECT_EQ(ev.finding().reason(),
            "open of a path denied by files.deny[0] (**/.env): rename /w/.env -> /w/e.txt");
  EXPECT_THAT(log_, ElementsAre("emit link", "responses t-1 alert,kill"));
}

// A deny the kernel cannot hold (a glob) is userspace's: the task dies at once, then the actor.
TEST_F(PipelineTest, LinkToAGlobDeniedNameIsKilledByWritd) {
  Use(identity::TaskMode::kEnforce, kComp);
  v1::Event ev = Run(RecordBuilder::Link(265, "/w/.ssh-copy/id_rsa", "/w/k"));
  EXPECT_EQ(ev.finding().rule(), "c/files.deny[1]");
  EXPECT_EQ(ev.outcome(), "killed_after");
  EXPECT_EQ(ev.enforcement(), "userspace");
  EXPECT_THAT(log_, ElementsAre("kill-now t-1", "signal 3999991 KILL", "emit link",
                                "responses t-1 alert,kill"));
  ev = Run(RecordBuilder::Link(82, "/w/a", "/w/b"));
  EXPECT_EQ(ev.verdict(), "allow");
  EXPECT_THAT(log_, ElementsAre("emit link"));
}

// The kernel killed an open no pattern names: a name a denied file was given in this task.
TEST_F(PipelineTest, OpenOfARenamedDeniedFileIsAFindingOfItsOwn) {
  Use(identity::TaskMode::kEnforce, kComp);
  v1::Event ev = Run(Open("/w/e.txt").Flags(WRIT_F_KERNEL_DENY));
  EXPECT_EQ(ev.verdict(), "violation");
  EXPECT_EQ(ev.outcome(), "killed_after");
  EXPECT_EQ(ev.finding().rule(), "c/files.deny.renamed");
  EXPECT_EQ(ev.finding().category(), "file");
}

TEST_F(PipelineTest, ExecWhosePathWasCutShortIsKilledHoweverItsTailLooks) {
  v1::Event ev = Run(Exec("/usr/bin/ls", {"ls"}).Flags(WRIT_F_PATH_TRUNC | WRIT_F_KERNEL_STOP));
  EXPECT_TRUE(ev.process().unresolved());
  EXPECT_EQ(ev.finding().rule(), "t/exec.unresolved");
  EXPECT_EQ(ev.outcome(), "killed");
  EXPECT_THAT(log_, ElementsAre("kill-now t-1", "signal 3999991 KILL", "mark-revoked t-1",
                                "emit exec", "responses t-1 alert,kill,revoke"));
}

TEST_F(PipelineTest, DynamicLoaderIsJudgedByTheProgramItWasAskedToRun) {
  const std::string ld = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
  v1::Event ev = Run(Exec(ld, {"ld.so", "--argv0", "ls", "/usr/bin/sudo", "-i"})
                         .Flags(WRIT_F_LOADER | WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.process().exe(), ld);
  EXPECT_EQ(ev.process().loaded(), "/usr/bin/sudo");  // the process is gone: the name as given
  EXPECT_EQ(ev.finding().rule(), "t/exec.deny[0]");
  EXPECT_EQ(ev.finding().reason(),
            "exec of a program denied by exec.deny[0] (/usr/bin/sudo): /usr/bin/sudo (loaded by " +
                ld + ")");
  EXPECT_EQ(ev.outcome(), "killed");
  ev = Run(Exec(ld, {"ld.so", "/usr/bin/ls"}).Flags(WRIT_F_LOADER | WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.verdict(), "allow");
  EXPECT_THAT(log_, ElementsAre("signal 3999991 CONT", "emit exec"));
  // A bare name the loader looks up in library paths, and a relative one whose process is gone.
  for (const char* name : {"ls", "./ls"}) {
    SCOPED_TRACE(name);
    ev = Run(Exec(ld, {"ld.so", name}).Flags(WRIT_F_LOADER | WRIT_F_KERNEL_STOP));
    EXPECT_TRUE(ev.process().unresolved());
    EXPECT_EQ(ev.finding().rule(), "t/exec.unresolved");
  }
  // --help runs no program: the loader is judged as itself.
  ev = Run(Exec(ld, {"ld.so", "--help"}).Flags(WRIT_F_LOADER | WRIT_F_KERNEL_STOP));
  EXPECT_EQ(ev.process().loaded(), "");
  EXPECT_EQ(ev.finding().rule(), "t/exec.default");
}

// kIntent has network.connect.allow and no network.unix: no unix socket but writd's own.
TEST_F(PipelineTest, UnixConnectRefusedByTheKernelIsPrevented) {
  v1::Event ev = Run(RecordBuilder::UnixConnect("/etc/hostname")
                         .Result(-1)
                         .Flags(WRIT_F_KERNEL_DENY | WRIT_F_CGROUP_HOOK));
  EXPECT_EQ(ev.finding().rule(), "t/network.unix.default");
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_EQ(ev.enforcement(), "cgroup-bpf");
  EXPECT_EQ(ev.finding().reason(),
            "unix connect from an intent with network.connect.allow and no network.unix (no unix "
            "socket is allowed but writd's own): /etc/hostname");
  // Where cgroup/connect_unix does not load the connect happened and was killed at its exit.
  ev = Run(RecordBuilder::UnixConnect("/etc/hostname", "/etc/hostname")
               .Result(0)
               .Flags(WRIT_F_KERNEL_DENY));
  EXPECT_EQ(ev.outcome(), "killed_after");
  EXPECT_EQ(ev.enforcement(), "kernel-signal");
}

TEST_F(PipelineTest, UnixConnectThatReachedNothingIsNotAFinding) {
  v1::Event ev = Run(RecordBuilder::UnixConnect("/var/run/nscd/no-such-socket")
                         .Result(-1)
                         .Flags(WRIT_F_KERNEL_DENY | WRIT_F_CGROUP_HOOK));
  EXPECT_EQ(ev.verdict(), "");
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_FALSE(ev.has_finding());
  EXPECT_THAT(log_, ElementsAre("emit connect"));
}

TEST_F(PipelineTest, WritdsOwnSocketsAreAllowedToEveryTask) {
  pipeline_.set_own_sockets({"/run/writ/writd.sock", "/run/writ/workload.sock"});
  v1::Event ev =
      Run(RecordBuilder::UnixConnect("/run/writ/workload.sock", "/run/writ/workload.sock"));
  EXPECT_EQ(ev.verdict(), "allow");
  EXPECT_THAT(log_, ElementsAre("emit connect"));
  // Not through another name.
  ev = Run(RecordBuilder::UnixConnect("/run/writ/workload.sock", "/run/other.sock"));
  EXPECT_EQ(ev.verdict(), "violation");
}

TEST_F(PipelineTest, RefusedDatagramSendIsPreventedAndNamedASend) {
  v1::Event ev = Run(RecordBuilder::Connect()
                         .Dst("10.0.0.1", 53)
                         .Result(-1)
                         .Flags(WRIT_F_KERNEL_DENY | WRIT_F_CGROUP_HOOK | WRIT_F_SEND));
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_EQ(ev.finding().rule(), "t/network.connect.default");
  EXPECT_EQ(ev.finding().reason(),
            "connect to a destination not in network.connect.allow: datagram to 10.0.0.1:53");
}

TEST_F(PipelineTest, SignalOwnershipAimedAtWritdIsASelfFinding) {
  v1::Event ev = Run(RecordBuilder::Self()
                         .SelfCall(72, -1, WRIT_SELF_WRITD, 4242, 3, 8, 4242)
                         .Flags(WRIT_F_SECCOMP | WRIT_F_NEEDS_VERDICT));
  EXPECT_EQ(ev.finding().rule(), "writ/self.fcntl");
  EXPECT_EQ(ev.outcome(), "prevented");
  EXPECT_THAT(ev.finding().reason(), ::testing::HasSubstr("owner of a file's signals"));
  ev = Run(RecordBuilder::Self().SelfCall(313, -1, WRIT_SELF_NONE, 0, -1, 0).Flags(WRIT_F_SECCOMP));
  EXPECT_EQ(ev.finding().rule(), "writ/self.finit_module");
  EXPECT_THAT(ev.finding().reason(), ::testing::HasSubstr("kernel modules"));
}

}  // namespace
}  // namespace writ::daemon
