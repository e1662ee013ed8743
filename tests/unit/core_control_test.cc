// ControlService: the control socket's handlers with the task actions and output faked
// (daemon_fakes.h) and the peer's cgroup given by the test: what each refuses, and that a refused
// request changes nothing. No root needed.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/control.h"
#include "daemon/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "unit/daemon_fakes.h"

namespace writ::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kIntents = R"(apiVersion: writ.dev/v1
kind: Intent
name: narrow
files:
  read: ["/repo/**"]
---
apiVersion: writ.dev/v1
kind: Intent
name: wide
files:
  read: ["/**"]
)";

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
    hooks.cgroup_of = [this](pid_t pid) -> absl::StatusOr<std::string> {
      auto it = cgroups_.find(pid);
      if (it == cgroups_.end()) return absl::NotFoundError("no such process");
      return it->second;
    };
    control_ = std::make_unique<ControlService>(
        ControlService::Deps{registry_, *policies_, approvals_, tasks_, out_}, std::move(hooks),
        ControlService::Options{"writ", identity::TaskMode::kEnforce});
    cgroups_[kOperator.pid] = "/user.slice/session-1.scope";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::shared_ptr<identity::Task> AddTask(const std::string& id, const std::string& intent = "") {
    auto t = std::make_shared<identity::Task>();
    t->id = id;
    t->spiffe_id = "spiffe://example.org/agent";
    t->intent = intent;
    t->state = identity::TaskState::kRunning;
    if (!intent.empty()) {
      t->compiled = *intent::Compile(*policies_->Get()->Find(intent), {});
    }
    t->chain = {t->spiffe_id};
    EXPECT_TRUE(registry_.Add(t).ok());
    return t;
  }
  // A process of task `id` (its cgroup is under the writ subtree).
  api::PeerCred InTask(const std::string& id, pid_t pid = 5001) {
    cgroups_[pid] = "/writ/" + id;
    return api::PeerCred{pid, 1000, 1000};
  }
  v1::CreateTaskRequest Create(const std::string& spiffe, const std::string& intent = "",
                               const std::string& parent = "") {
    v1::CreateTaskRequest r;
    r.set_spiffe_id(spiffe);
    r.set_intent(intent);
    r.set_parent_task(parent);
    return r;
  }
  static v1::Request KillReq(const std::string& id) {
    v1::Request r;
    r.mutable_kill_task()->set_task_id(id);
    return r;
  }
  static absl::StatusCode Code(const v1::Response& r) {
    return static_cast<absl::StatusCode>(r.code());
  }

  static constexpr api::PeerCred kOperator{4001, 0, 0};
  std::string dir_;
  std::map<pid_t, std::string> cgroups_;
  std::vector<std::string> log_;
  identity::TaskRegistry registry_{16};
  Approvals approvals_;
  testing::FakeTasks tasks_{&log_};
  testing::FakeOutput out_{&log_};
  std::unique_ptr<PolicyStore> policies_;
  std::unique_ptr<ControlService> control_;
};

TEST_F(ControlTest, OperatorCreatesATask) {
  v1::Response r = control_->CreateTask(kOperator, Create("spiffe://example.org/agent", "narrow"));
  ASSERT_EQ(r.code(), 0) << r.error();
  ASSERT_EQ(tasks_.installed.size(), 1u);
  EXPECT_EQ(tasks_.installed[0]->intent, "narrow");
  EXPECT_EQ(tasks_.installed[0]->mode, identity::TaskMode::kEnforce);
  EXPECT_THAT(log_, ElementsAre("install " + r.create_task().task_id(), "emit task_start"));
}

TEST_F(ControlTest, BadInputIsRefusedAndNothingIsCreated) {
  v1::Response r = control_->CreateTask(kOperator, Create("http://not-spiffe"));
  EXPECT_EQ(Code(r), absl::StatusCode::kInvalidArgument);
  r = control_->CreateTask(kOperator, Create("spiffe://example.org/a", "nope"));
  EXPECT_EQ(Code(r), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.error(), HasSubstr("loaded: narrow, wide"));
  v1::CreateTaskRequest p = Create("spiffe://example.org/a");
  (*p.mutable_params())["repo"] = "/x";
  EXPECT_THAT(control_->CreateTask(kOperator, p).error(), HasSubstr("--param needs --intent"));
  p = Create("spiffe://example.org/a", "narrow");
  p.set_ttl("soon");
  EXPECT_THAT(control_->CreateTask(kOperator, p).error(), HasSubstr("--ttl"));
  EXPECT_THAT(
      control_->CreateTask(kOperator, Create("spiffe://example.org/a", "", "t-none")).error(),
      HasSubstr("parent task t-none does not exist"));
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(ControlTest, ATaskCannotStartATopLevelTaskOrAnotherTasksChild) {
  AddTask("t-mine", "narrow");
  AddTask("t-other", "wide");
  api::PeerCred agent = InTask("t-mine");
  v1::Response r = control_->CreateTask(agent, Create("spiffe://example.org/agent/admin"));
  EXPECT_EQ(Code(r), absl::StatusCode::kPermissionDenied);
  r = control_->CreateTask(agent, Create("spiffe://example.org/a", "wide", "t-other"));
  EXPECT_EQ(Code(r), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(ControlTest, ASubAgentGetsNoAuthorityItsParentLacks) {
  AddTask("t-mine", "narrow");
  api::PeerCred agent = InTask("t-mine");
  v1::Response r =
      control_->CreateTask(agent, Create("spiffe://example.org/sub", "wide", "t-mine"));
  EXPECT_NE(r.code(), 0);
  r = control_->CreateTask(agent, Create("spiffe://example.org/sub", "", "t-mine"));
  EXPECT_EQ(Code(r), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.error(), HasSubstr("without an intent"));
  EXPECT_THAT(log_, IsEmpty());
  r = control_->CreateTask(agent, Create("spiffe://example.org/sub", "narrow", "t-mine"));
  EXPECT_EQ(r.code(), 0) << r.error();
}

TEST_F(ControlTest, ATaskCannotControlTasksDecideApprovalsOrReload) {
  AddTask("t-mine", "narrow");
  api::PeerCred agent = InTask("t-mine");
  EXPECT_EQ(Code(control_->TaskAction(agent, KillReq("t-mine"))),
            absl::StatusCode::kPermissionDenied);
  ApprovalRequest req;
  req.task_id = "t-mine";
  req.kind = "exec";
  req.expires = absl::Now() + absl::Minutes(1);
  std::string id = approvals_.Add(req);
  v1::ApprovalDecision d;
  d.set_id(id);
  d.set_approve(true);
  EXPECT_EQ(Code(control_->Decide(agent, d)), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(approvals_.size(), 1u);  // still pending: nothing was decided
  EXPECT_EQ(Code(control_->Reload(agent)), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(ControlTest, APeerWhoseCgroupCannotBeReadIsTreatedAsInsideATask) {
  AddTask("t-1");
  api::PeerCred vanished{4999, 0, 0};  // no cgroup entry: the lookup fails
  EXPECT_EQ(Code(control_->TaskAction(vanished, KillReq("t-1"))),
            absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(ControlTest, OperatorKillsAndDecides) {
  AddTask("t-1");
  EXPECT_EQ(control_->TaskAction(kOperator, KillReq("t-1")).code(), 0);
  EXPECT_EQ(Code(control_->TaskAction(kOperator, KillReq("t-none"))), absl::StatusCode::kNotFound);
  ApprovalRequest req;
  req.task_id = "t-1";
  req.kind = "exec";
  req.pid = 77;
  req.expires = absl::Now() + absl::Minutes(1);
  std::string id = approvals_.Add(req);
  v1::ApprovalDecision d;
  d.set_id(id);
  d.set_approve(true);
  EXPECT_EQ(control_->Decide(kOperator, d).code(), 0);
  EXPECT_THAT(log_, ElementsAre("kill t-1", "emit action", "signal 77 CONT", "thaw t-1"));
  EXPECT_EQ(Code(control_->Decide(kOperator, d)), absl::StatusCode::kNotFound);  // decided once
}

TEST_F(ControlTest, TaskStartedPlacesOnlyTheCallersOwnChildOfAPendingTask) {
  auto t = AddTask("t-1");
  t->state = identity::TaskState::kPending;
  v1::TaskStartedRequest s;
  s.set_task_id("t-1");
  s.set_started(true);
  s.set_place(true);
  s.set_pid(1);  // init is nobody's child here
  v1::Response r = control_->TaskStarted(kOperator, s);
  EXPECT_EQ(Code(r), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(log_, IsEmpty());
  t->state = identity::TaskState::kRunning;
  s.set_pid(getpid());
  EXPECT_EQ(Code(control_->TaskStarted(api::PeerCred{getppid(), 0, 0}, s)),
            absl::StatusCode::kFailedPrecondition);
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
  EXPECT_FALSE(find("self-threads:")->active);
  EXPECT_THAT(find("lineage:")->detail, HasSubstr("next command"));
}

// The containment hooks have one rung whatever the LSM does; unix connects fall back to the syscall
// exit where cgroup/connect_unix does not load (Linux < 6.7).
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
    ASSERT_NE(find("unix: cgroup-bpf"), nullptr);
    EXPECT_TRUE(find("link: kernel-signal")->active);
  }
  hooks[4].active = false;  // cgroup/connect_unix did not load
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
