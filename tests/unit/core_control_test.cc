// ControlService: the control socket's handlers with the task actions and output faked
// (daemon_fakes.h) and the caller given as the identity the server would have taken at accept
// (api::Peer): who may do what, that a refused request changes nothing, and that a refusal from
// inside a task is a `self` finding that runs the task's responses. No root needed.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "daemon/control.h"
#include "daemon/metrics.h"
#include "daemon/tool_calls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "unit/daemon_fakes.h"

namespace writ::daemon {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kIntents = R"(apiVersion: writ.dev/v1
kind: Intent
name: narrow
files:
  read: ["/repo/**"]
on_violation: [alert, kill, revoke]
---
apiVersion: writ.dev/v1
kind: Intent
name: wide
files:
  read: ["/**"]
---
apiVersion: writ.dev/v1
kind: Intent
name: rooted
run_as_root: true
files:
  read: ["/**"]
)";

constexpr gid_t kAdminGid = 901;

api::Peer MakePeer(uid_t uid, std::string cgroup, uint64_t conn, std::vector<gid_t> groups = {}) {
  api::Peer p;
  p.cred = api::PeerCred{static_cast<pid_t>(4000 + conn), uid, uid};
  p.cgroup = std::move(cgroup);
  p.conn_id = conn;
  p.groups = std::move(groups);
  return p;
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-control-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/intents.yaml") << kIntents;
    policies_ = std::make_unique<PolicyStore>(dir_, nullptr);
    ASSERT_TRUE(policies_->Load().ok());
    ControlService::Hooks hooks;
    hooks.status = [this](v1::StatusResponse* s) {
      s->add_hooks()->set_name("exec");
      (*s->mutable_counters())["violations"] = 7;
      for (const auto& t : registry_.All()) s->add_tasks()->set_task_id(t->id);
    };
    hooks.tail = [this](int, const v1::TailRequest& r, std::function<bool(const v1::Event&)> v) {
      tails_.push_back(r);
    };
    ControlService::Options opts{"writ", identity::TaskMode::kEnforce, static_cast<int>(kAdminGid),
                                 "unix:///run/writ/workload.sock"};
    tool_calls_ = std::make_unique<ToolCalls>(ToolCalls::Deps{registry_, approvals_, out_});
    control_ = std::make_unique<ControlService>(
        ControlService::Deps{registry_, *policies_, approvals_, tasks_, out_, tool_calls_.get()},
        std::move(hooks), std::move(opts));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::shared_ptr<identity::Task> AddTask(const std::string& id, const std::string& intent = "",
                                          uint32_t owner = 1000) {
    auto t = std::make_shared<identity::Task>();
    t->id = id;
    t->spiffe_id = "spiffe://example.org/agent";
    t->intent = intent;
    t->owner_uid = owner;
    t->run_uid = owner;
    t->mode = identity::TaskMode::kEnforce;
    t->state = identity::TaskState::kRunning;
    if (!intent.empty()) t->compiled = *intent::Compile(*policies_->Get()->Find(intent), {});
    t->chain = {t->spiffe_id};
    EXPECT_TRUE(registry_.Add(t).ok());
    return t;
  }
  v1::CreateTaskRequest Create(const std::string& intent = "", const std::string& parent = "") {
    v1::CreateTaskRequest r;
    r.set_spiffe_id("spiffe://example.org/agent");
    r.set_intent(intent);
    r.set_parent_task(parent);
    return r;
  }
  static v1::Request KillReq(const std::string& id) {
    v1::Request r;
    r.mutable_kill_task()->set_task_id(id);
    return r;
  }
  std::string Pending(const std::string& task) {
    ApprovalRequest req;
    req.task_id = task;
    req.kind = "exec";
    req.pid = 77;
    req.expires = absl::Now() + absl::Minutes(1);
    return approvals_.Add(req);
  }
  static absl::StatusCode Code(const v1::Response& r) {
    return static_cast<absl::StatusCode>(r.code());
  }
  // The self findings emitted so far.
  std::vector<v1::Event> SelfFindings() const {
    std::vector<v1::Event> out;
    for (const auto& e : out_.events) {
      if (e.kind() == "self") out.push_back(e);
    }
    return out;
  }

  // Root and members of the admin group outside any task are admins; an operator is in the control
  // group only; a process of task t-mine is whatever its uid.
  const api::Peer root_ = MakePeer(0, "/user.slice/session-1.scope", 1);
  const api::Peer admin_ = MakePeer(1001, "/user.slice/session-2.scope", 2, {kAdminGid});
  const api::Peer operator_ = MakePeer(1000, "/user.slice/session-3.scope", 3);
  const api::Peer agent_ = MakePeer(1000, "/writ/t-mine", 4);
  const api::Peer root_agent_ = MakePeer(0, "/writ/t-mine/nested", 5, {kAdminGid});

  std::string dir_;
  std::vector<std::string> log_;
  std::vector<v1::TailRequest> tails_;
  identity::TaskRegistry registry_{16};
  Approvals approvals_;
  testing::FakeTasks tasks_{&log_};
  testing::FakeOutput out_{&log_};
  std::unique_ptr<PolicyStore> policies_;
  std::unique_ptr<ToolCalls> tool_calls_;
  std::unique_ptr<ControlService> control_;
};

TEST_F(ControlTest, AnOperatorLaunchesAsItself) {
  v1::Response r = control_->CreateTask(operator_, Create("narrow"));
  ASSERT_EQ(r.code(), 0) << r.error();
  ASSERT_EQ(tasks_.installed.size(), 1u);
  const identity::Task& t = *tasks_.installed[0];
  EXPECT_EQ(t.run_uid, 1000u);
  EXPECT_FALSE(t.root);
  EXPECT_EQ(t.owner_uid, 1000u);
  EXPECT_EQ(t.launcher_conn, operator_.conn_id);
  EXPECT_EQ(t.mode, identity::TaskMode::kEnforce);
  EXPECT_EQ(r.create_task().workload_socket(), "unix:///run/writ/workload.sock");
  EXPECT_THAT(log_, ElementsAre("install " + t.id, "emit task_start"));
  EXPECT_EQ(out_.events.back().task().run_uid(), 1000u);
}

TEST_F(ControlTest, RootSaysWhomTheAgentRunsAsAndOnlyRootChoosesAnother) {
  v1::CreateTaskRequest req = Create("narrow");
  EXPECT_THAT(control_->CreateTask(root_, req).error(), HasSubstr("would run as root"));
  req.set_run_uid(1000);
  EXPECT_EQ(control_->CreateTask(root_, req).code(), 0);
  req.set_run_uid(1001);
  EXPECT_EQ(Code(control_->CreateTask(operator_, req)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(tasks_.installed.size(), 1u);
}

TEST_F(ControlTest, ARootTaskIsOptedInOnTheCommandLineAndInTheIntent) {
  v1::CreateTaskRequest req = Create("narrow");
  req.set_run_uid(0);
  req.set_allow_root(true);
  EXPECT_THAT(control_->CreateTask(root_, req).error(), HasSubstr("does not allow root"));
  req.set_intent("");
  EXPECT_THAT(control_->CreateTask(root_, req).error(), HasSubstr("needs an intent"));
  req.set_intent("rooted");
  EXPECT_THAT(control_->CreateTask(operator_, req).error(), HasSubstr("cannot start a root task"));
  EXPECT_THAT(tasks_.installed, IsEmpty());
  v1::Response r = control_->CreateTask(root_, req);
  ASSERT_EQ(r.code(), 0) << r.error();
  EXPECT_TRUE(tasks_.installed[0]->root);
  EXPECT_TRUE(out_.events.back().task().root());
}

TEST_F(ControlTest, BadInputIsRefusedAndNothingIsCreated) {
  v1::CreateTaskRequest bad = Create();
  bad.set_spiffe_id("http://not-spiffe");
  EXPECT_EQ(Code(control_->CreateTask(operator_, bad)), absl::StatusCode::kInvalidArgument);
  v1::Response r = control_->CreateTask(operator_, Create("nope"));
  EXPECT_EQ(Code(r), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.error(), HasSubstr("loaded: narrow, wide, rooted"));
  v1::CreateTaskRequest p = Create();
  (*p.mutable_params())["repo"] = "/x";
  EXPECT_THAT(control_->CreateTask(operator_, p).error(), HasSubstr("--param needs --intent"));
  p = Create("narrow");
  p.set_ttl("soon");
  EXPECT_THAT(control_->CreateTask(operator_, p).error(), HasSubstr("--ttl"));
  EXPECT_THAT(control_->CreateTask(operator_, Create("", "t-none")).error(),
              HasSubstr("parent task t-none does not exist"));
  EXPECT_THAT(log_, IsEmpty());
}

// The forged task of issue 16: a process inside a task asks for a new top-level task with another
// identity. Refused, reported as a self finding, and the task's responses run.
TEST_F(ControlTest, ATaskCannotStartATopLevelTaskOrAnotherTasksChild) {
  AddTask("t-mine", "narrow");
  AddTask("t-other", "wide", 2000);
  v1::CreateTaskRequest forged = Create();
  forged.set_spiffe_id("spiffe://example.org/agent/admin");
  EXPECT_EQ(Code(control_->CreateTask(agent_, forged)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code(control_->CreateTask(agent_, Create("wide", "t-other"))),
            absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(tasks_.installed, IsEmpty());
  auto found = SelfFindings();
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].agent().task_id(), "t-mine");
  EXPECT_EQ(found[0].syscall().name(), "control:create_task");
  EXPECT_EQ(found[0].outcome(), "prevented");
  EXPECT_THAT(found[0].finding().frameworks(), Contains("OWASP-ASI10"));
  EXPECT_THAT(found[0].finding().frameworks(), Contains("OWASP-ASI03"));
  EXPECT_THAT(log_, Contains("responses t-mine alert,kill,revoke"));
  EXPECT_THAT(log_, Contains("mark-revoked t-mine"));
  EXPECT_EQ(control_->refused_from_tasks(), 2u);
}

TEST_F(ControlTest, ASubAgentGetsNoAuthorityItsParentLacks) {
  AddTask("t-mine", "narrow");
  EXPECT_NE(control_->CreateTask(agent_, Create("wide", "t-mine")).code(), 0);
  v1::Response r = control_->CreateTask(agent_, Create("", "t-mine"));
  EXPECT_EQ(Code(r), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.error(), HasSubstr("without an intent"));
  EXPECT_THAT(tasks_.installed, IsEmpty());
  r = control_->CreateTask(agent_, Create("narrow", "t-mine"));
  EXPECT_EQ(r.code(), 0) << r.error();
}

// Whatever its uid and groups, a process inside a task is no admin.
TEST_F(ControlTest, ATaskCannotControlTasksDecideApprovalsOrReload) {
  AddTask("t-mine", "narrow", 0);
  std::string id = Pending("t-mine");
  v1::ApprovalDecision d;
  d.set_id(id);
  d.set_approve(true);
  for (const api::Peer* p : {&agent_, &root_agent_}) {
    EXPECT_EQ(Code(control_->TaskAction(*p, KillReq("t-mine"))),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(Code(control_->Decide(*p, d)), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(Code(control_->Reload(*p)), absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(approvals_.size(), 1u);  // still pending: nothing was decided
  EXPECT_EQ(SelfFindings().size(), 6u);
  EXPECT_THAT(log_, ::testing::Not(Contains("kill t-mine")));
}

TEST_F(ControlTest, OnlyAdminsKillApproveAndReload) {
  AddTask("t-1");
  EXPECT_EQ(Code(control_->TaskAction(operator_, KillReq("t-1"))),
            absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(SelfFindings(), IsEmpty());  // an operator is no task: refused, not a finding
  EXPECT_EQ(control_->TaskAction(admin_, KillReq("t-1")).code(), 0);
  EXPECT_EQ(control_->TaskAction(root_, KillReq("t-1")).code(), 0);
  EXPECT_EQ(Code(control_->TaskAction(root_, KillReq("t-none"))), absl::StatusCode::kNotFound);
  std::string id = Pending("t-1");
  v1::ApprovalDecision d;
  d.set_id(id);
  d.set_approve(true);
  EXPECT_EQ(Code(control_->Decide(operator_, d)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(control_->Decide(admin_, d).code(), 0);
  EXPECT_EQ(Code(control_->Decide(admin_, d)), absl::StatusCode::kNotFound);  // decided once
  EXPECT_THAT(log_, Contains("signal 77 CONT"));
}

// A denial with a kill response kills the task before thawing it: thawed first, the agent's shell
// would run its next command when the denied child died.
TEST_F(ControlTest, ADenialWithAKillResponseKillsBeforeItThaws) {
  AddTask("t-1");
  ApprovalRequest req;
  req.task_id = "t-1";
  req.kind = "exec";
  req.pid = 77;
  req.responses = {"alert", "kill"};
  req.expires = absl::Now() + absl::Minutes(1);
  v1::ApprovalDecision d;
  d.set_id(approvals_.Add(req));
  d.set_approve(false);
  ASSERT_EQ(control_->Decide(root_, d).code(), 0);
  EXPECT_THAT(log_, ElementsAre("emit action", "kill-now t-1", "signal 77 KILL", "thaw t-1",
                                "responses t-1 alert,kill"));
}

TEST_F(ControlTest, OnlyTheConnectionThatCreatedATaskStartsIt) {
  v1::Response r = control_->CreateTask(operator_, Create("narrow"));
  ASSERT_EQ(r.code(), 0);
  const std::string id = r.create_task().task_id();
  ASSERT_TRUE(registry_.Add(tasks_.installed[0]).ok());  // what TaskLifecycle::Install does
  v1::TaskStartedRequest s;
  s.set_task_id(id);
  s.set_started(true);
  s.set_place(true);
  s.set_pid(getpid());
  api::Peer second = operator_;
  second.conn_id = 99;  // the same user, another connection
  EXPECT_EQ(Code(control_->TaskStarted(second, s)), absl::StatusCode::kPermissionDenied);
  AddTask("t-mine", "narrow");
  EXPECT_EQ(Code(control_->TaskStarted(agent_, s)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(SelfFindings().size(), 1u);  // the task's attempt is a finding; the operator's is not
  EXPECT_THAT(log_, ::testing::Not(Contains(::testing::StartsWith("place"))));
  // Its own launcher may start it, and only with its own child.
  s.set_pid(1);
  EXPECT_EQ(Code(control_->TaskStarted(operator_, s)), absl::StatusCode::kPermissionDenied);
}

// MCP gateway reports (writ run --mcp) are believed only from the connection that created the task,
// outside every task: the server reporting (or polling) its own calls is a self finding.
TEST_F(ControlTest, OnlyTheLauncherReportsToolCalls) {
  v1::Response r = control_->CreateTask(operator_, Create("narrow"));
  ASSERT_EQ(r.code(), 0);
  const std::string id = r.create_task().task_id();
  ASSERT_TRUE(registry_.Add(tasks_.installed[0]).ok());
  v1::ToolCallReport rep;
  rep.set_task_id(id);
  rep.set_phase("start");
  rep.set_call_id("1");
  rep.set_name("write_file");
  rep.set_arguments("{}");
  rep.set_arguments_sha256("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  api::Peer second = operator_;
  second.conn_id = 99;
  EXPECT_EQ(Code(control_->ToolCall(second, rep)), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(SelfFindings().empty());
  // Inside a task, even on the connection that created it (a launcher inside a task), refused.
  auto mine = AddTask("t-mine", "narrow");
  mine->launcher_conn = agent_.conn_id;
  v1::ToolCallReport own = rep;
  own.set_task_id("t-mine");
  EXPECT_EQ(Code(control_->ToolCall(agent_, own)), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(SelfFindings().size(), 1u);
  EXPECT_EQ(SelfFindings()[0].finding().rule(), "writ/self.control.tool_call");
  EXPECT_EQ(tool_calls_->counters().calls.load(), 0u);
  // The launcher: judged (no tools: in this intent, so allowed) and in flight.
  v1::Response ok = control_->ToolCall(operator_, rep);
  ASSERT_EQ(ok.code(), 0) << ok.error();
  EXPECT_EQ(ok.tool().verdict(), "allow");
  EXPECT_TRUE(tool_calls_->active());
  // Arguments that are not what their digest says: refused.
  rep.set_call_id("2");
  rep.set_arguments("{\"path\":\"/etc/shadow\"}");
  EXPECT_EQ(control_->ToolCall(operator_, rep).tool().verdict(), "deny");
}

TEST_F(ControlTest, EachCallerSeesOnlyWhatItMay) {
  AddTask("t-mine", "narrow", 1000);
  AddTask("t-sub", "narrow", 1000)->parent_task = "t-mine";
  AddTask("t-other", "wide", 2000);
  Pending("t-mine");
  Pending("t-other");
  auto ids = [](const v1::Response& r) {
    std::vector<std::string> out;
    for (const auto& t : r.status().tasks()) out.push_back(t.task_id());
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_THAT(ids(control_->Status(root_)), ElementsAre("t-mine", "t-other", "t-sub"));
  EXPECT_THAT(ids(control_->Status(operator_)), ElementsAre("t-mine", "t-sub"));
  v1::Response mine = control_->Status(agent_);
  EXPECT_THAT(ids(mine), ElementsAre("t-mine", "t-sub"));
  EXPECT_EQ(mine.status().hooks_size(), 0);  // a task gets no map of what is not watched
  EXPECT_TRUE(mine.status().counters().empty());
  EXPECT_EQ(control_->Status(root_).status().hooks_size(), 1);
  EXPECT_EQ(control_->ListApprovals(root_).approvals().approvals_size(), 2);
  EXPECT_EQ(control_->ListApprovals(agent_).approvals().approvals_size(), 1);
  EXPECT_EQ(control_->ListApprovals(MakePeer(3000, "/user.slice", 7)).approvals().approvals_size(),
            0);
}

TEST_F(ControlTest, ATaskTailsOnlyItself) {
  AddTask("t-mine", "narrow");
  v1::Request req;
  req.mutable_tail()->set_task("t-other");
  control_->Handle(agent_, -1, req);
  EXPECT_THAT(tails_, IsEmpty());
  EXPECT_EQ(SelfFindings().size(), 1u);
  req.mutable_tail()->clear_task();
  control_->Handle(agent_, -1, req);
  ASSERT_EQ(tails_.size(), 1u);
  EXPECT_EQ(tails_[0].task(), "t-mine");  // narrowed to its own task
}

}  // namespace
}  // namespace writ::daemon

namespace writ::daemon {
namespace {

// writ status named rungs by position in the hook list; since the enter programs were removed,
// index 13 was a self-protection hook and "connect: cgroup-bpf" was reported from it. Rungs are
// derived by identity now: a host whose cgroup hooks did not attach says so, whatever else is
// attached.
TEST(EnforcementRungs, NameHooksByIdentityNotPosition) {
  std::vector<bpf::HookStatus> hooks;
  auto add = [&hooks](bpf::HookId id, const char* name, bool active) {
    hooks.push_back({id, name, active, active ? "" : "unavailable (Operation not permitted)"});
  };
  add(bpf::HookId::kExec, "exec (tp_btf/sched_process_exec)", true);
  add(bpf::HookId::kFork, "fork", true);
  add(bpf::HookId::kExit, "exit", true);
  for (int i = 0; i < 4; i++) add(bpf::HookId::kOpenExit, "open", true);
  add(bpf::HookId::kConnectEnter, "connect enter", true);
  add(bpf::HookId::kConnectExit, "connect exit", true);
  add(bpf::HookId::kCgroupConnect, "connect (cgroup/connect4)", false);
  add(bpf::HookId::kCgroupConnect, "connect (cgroup/connect6)", false);
  for (int i = 0; i < 28; i++) add(bpf::HookId::kSelf, "self", true);

  bpf::KernelFacts k{false, "bpf not in /sys/kernel/security/lsm"};
  auto rungs = bpf::EnforcementRungs(hooks, k);
  auto find = [&rungs](const std::string& prefix) -> const bpf::Rung* {
    for (const auto& r : rungs) {
      if (r.name.rfind(prefix, 0) == 0) return &r;
    }
    return nullptr;
  };
  ASSERT_NE(find("connect:"), nullptr);
  EXPECT_FALSE(find("connect:")->active);
  EXPECT_THAT(find("connect:")->detail, HasSubstr("connect (cgroup/connect4)"));
  EXPECT_TRUE(find("exec:")->active);
  EXPECT_TRUE(find("open:")->active);
  EXPECT_FALSE(find("lsm:")->active);
  EXPECT_EQ(find("lsm:")->detail, "bpf not in /sys/kernel/security/lsm");

  hooks[3].active = false;  // one of the open syscalls
  rungs = bpf::EnforcementRungs(hooks, k);
  EXPECT_FALSE(find("open:")->active);

  // Where the LSM object loaded, exec, open and connect name the LSM rung; the kernel's missing
  // kfuncs (6.1) are named with what they cost.
  k = {true, "active", false, false};
  rungs = bpf::EnforcementRungs(hooks, k);
  for (const char* hook : {"exec: lsm ", "open: lsm ", "connect: lsm "}) {
    ASSERT_NE(find(hook), nullptr) << hook;
    EXPECT_TRUE(find(hook)->active) << hook;
  }
  EXPECT_EQ(find("open: kernel-signal"), nullptr);
  EXPECT_FALSE(find("lineage:")->active);
  // lsm/task_kill sees the receiving task itself: every thread of writd, whatever the kernel.
  EXPECT_TRUE(find("self-threads:")->active);
  EXPECT_THAT(find("self:")->name, HasSubstr("lsm"));
  EXPECT_THAT(find("lineage:")->detail, HasSubstr("next command"));
  // The link rung is the LSM's only where its path hooks loaded (a kLsm "link" row).
  EXPECT_EQ(find("link: lsm"), nullptr);
  hooks.push_back(
      {bpf::HookId::kLsm, "link (lsm/path_rename, lsm/path_link, lsm/path_symlink)", true, ""});
  rungs = bpf::EnforcementRungs(hooks, k);
  ASSERT_NE(find("link: lsm"), nullptr);
  EXPECT_TRUE(find("link: lsm")->active);
}

// The send and link hooks have one rung whatever the LSM does; unix sockets are the LSM rung's
// where it loads, cgroup/connect_unix's on Linux 6.7+, and fall back to the syscall exit elsewhere.
TEST(EnforcementRungs, ContainmentHooksAndTheUnixFallback) {
  std::vector<bpf::HookStatus> hooks;
  auto add = [&hooks](bpf::HookId id, const char* name, bool active) {
    hooks.push_back({id, name, active, active ? "" : "unavailable (no BPF_CGROUP_UNIX_CONNECT)"});
  };
  add(bpf::HookId::kCgroupSendmsg, "send (cgroup/sendmsg4)", true);
  add(bpf::HookId::kCgroupSendmsg, "send (cgroup/sendmsg6)", true);
  add(bpf::HookId::kUnixConnect, "unix (syscalls/sys_enter_connect)", true);
  add(bpf::HookId::kUnixConnect, "unix (syscalls/sys_exit_connect)", true);
  add(bpf::HookId::kCgroupUnix, "unix (cgroup/connect_unix)", true);
  add(bpf::HookId::kLink, "link (syscalls/sys_enter_rename)", true);
  for (bool lsm : {false, true}) {
    auto rungs = bpf::EnforcementRungs(hooks, {lsm, lsm ? "active" : "no"});
    auto find = [&rungs](const std::string& prefix) -> const bpf::Rung* {
      for (const auto& r : rungs) {
        if (r.name.rfind(prefix, 0) == 0) return &r;
      }
      return nullptr;
    };
    ASSERT_NE(find("send: cgroup-bpf"), nullptr);
    EXPECT_TRUE(find("send: cgroup-bpf")->active);
    ASSERT_NE(find(lsm ? "unix: lsm (" : "unix: cgroup-bpf"), nullptr);
    EXPECT_TRUE(find(lsm ? "unix: lsm (" : "unix: cgroup-bpf")->active);
    ASSERT_NE(find(lsm ? "self: lsm (" : "self: seccomp"), nullptr);
    EXPECT_TRUE(find("link: kernel-signal")->active);
  }
  hooks[4].active = false;  // cgroup/connect_unix did not load
  {
    // Linux 6.1 with BPF-LSM (the VM tier): the LSM hooks judge unix sockets before the lookup.
    auto rungs = bpf::EnforcementRungs(hooks, {true, "active"});
    bool lsm_unix = false;
    for (const auto& r : rungs) {
      if (r.name.rfind("unix: lsm (", 0) == 0) lsm_unix = r.active;
      EXPECT_NE(r.name.rfind("unix: kernel-signal", 0), 0u) << "a rung that is not used";
    }
    EXPECT_TRUE(lsm_unix);
  }
  auto rungs = bpf::EnforcementRungs(hooks, {false, "no"});
  bool fallback = false;
  for (const auto& r : rungs) {
    if (r.name.rfind("unix: kernel-signal at connect exit", 0) == 0) fallback = r.active;
    EXPECT_NE(r.name.rfind("unix: cgroup-bpf", 0), 0u) << "a rung that is not there";
  }
  EXPECT_TRUE(fallback);
}

}  // namespace
}  // namespace writ::daemon
