// Agents writ did not launch, adopted by a policy `Workloads` entry, and sub-agent lifecycle, end
// to end: the real writd (enforce mode) and writ binaries, agents started by this test outside
// writ.
//
// Adoption: a copy of bash at a unique path is the "agent". Started in a cgroup the workload's
// selectors name (exe path + uid + sha256 + cgroup glob), it must be stopped at exec, placed in a
// new task cgroup, announced by task_start {adopted: true}, and then governed: a denied connect
// gets EPERM, a denied exec is killed. The same binary started elsewhere is a kernel candidate that
// userspace rejects: it must run untouched. Needs root (writd loads BPF); skips otherwise.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "identity/cgroup.h"
#include "testlib/listener.h"
#include "testlib/paths.h"
#include "testlib/writd_fixture.h"
#include "util/util.h"

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

using testlib::RealPath;

// Waits (bounded) for a child started with fork; returns its exit code, 128+signal, or -1 on
// timeout (then it is killed).
int WaitChild(pid_t pid, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  while (std::chrono::steady_clock::now() < until) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

// fork + (join `cgroup_dir` when not empty) + exec argv: an agent started outside writ.
pid_t StartOutside(const std::string& cgroup_dir, const std::vector<std::string>& argv) {
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  std::string procs = cgroup_dir.empty() ? "" : cgroup_dir + "/cgroup.procs";
  pid_t pid = fork();
  if (pid == 0) {
    if (!procs.empty()) {
      int fd = open(procs.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(120);
      close(fd);
    }
    execv(a[0], a.data());
    _exit(127);
  }
  return pid;
}

class AdoptE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    st_ = new absl::Status(Prepare());
  }
  static absl::Status Prepare() {
    char tmpl[] = "/tmp/writ-adopt-XXXXXX";
    if (!mkdtemp(tmpl)) return absl::InternalError("mkdtemp");
    work_ = new std::string(RealPath(tmpl));
    chmod(work_->c_str(), 0755);
    agent_ = new std::string(*work_ + "/agent");
    std::filesystem::copy_file(RealPath("/bin/bash"), *agent_);
    chmod(agent_->c_str(), 0755);
    CmdResult sha = RunCommand({"/usr/bin/sha256sum", *agent_});
    if (sha.exit_code != 0 || sha.out.size() < 64)
      return absl::InternalError("sha256sum: " + sha.err);
    auto mount = identity::FindCgroup2Mount();
    if (!mount.ok()) return mount.status();
    // The cgroup an outside agent runs in (a stand-in for a systemd service or a container).
    outside_rel_ = new std::string("/writ-adopt-out-" + RandomHex(4));
    outside_ = new std::string(*mount + *outside_rel_);
    if (mkdir(outside_->c_str(), 0755) != 0) return absl::InternalError("mkdir " + *outside_);
    deny_ = new Listener(AF_INET);
    ok_ = new Listener(AF_INET);
    const std::string policy = absl::StrCat(R"(apiVersion: writ.dev/v1
kind: Intent
name: t-adopted
params:
  agent: {type: path, required: true}
  port: {type: int, required: true}
exec:
  allow: ["${agent}", ")",
                                            RealPath("/bin/sleep"), R"("]
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: ["${port}"]}]
on_violation: [alert]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: t-open
exec: {deny: [/usr/bin/sudo]}
mode: enforce
---
# An agent started by hand, by cron or by systemd: recognised when it execs.
apiVersion: writ.dev/v1
kind: Workloads
workloads:
  - name: test-agent
    spiffe_id: spiffe://example.org/agent/adopted
    intent: t-adopted
    principal: user:adopt-test@example.org
    params: {agent: ")",
                                            *agent_, R"(", port: ")", ok_->port, R"("}
    selectors:
      - "unix:path:)",
                                            *agent_, R"("
      - "unix:uid:0"
      - "unix:sha256:)",
                                            sha.out.substr(0, 64), R"("
      - "cgroup:path:)",
                                            *outside_rel_, R"(/**"
)");
    writd_ = new WritdInstance();
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["adopt.yaml"] = policy;
    return writd_->Start(o);
  }
  static void TearDownTestSuite() {
    if (writd_) {
      if (writd_->running()) {
        EXPECT_EQ(writd_->Stop(), 0) << writd_->log();
      }
      delete writd_;
      writd_ = nullptr;
    }
    if (outside_) rmdir(outside_->c_str());
    if (work_) std::filesystem::remove_all(*work_);
    delete deny_;
    delete ok_;
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "e2e needs root: writd loads BPF programs";
    ASSERT_TRUE(st_->ok()) << *st_;
  }
  static json TaskEnd(const std::string& task,
                      std::chrono::milliseconds t = std::chrono::seconds(10)) {
    return writd_->WaitForEvent(
        [&](const json& e) {
          return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
        },
        t);
  }
  static json TaskStartOf(const std::string& spiffe,
                          std::chrono::milliseconds t = std::chrono::seconds(10)) {
    return writd_->WaitForEvent(
        [&](const json& e) {
          return e.value("kind", "") == "task_start" && e["agent"].value("spiffe_id", "") == spiffe;
        },
        t);
  }
  static uint64_t Counter(const std::string& name) {
    CmdResult r = writd_->Writ({"status"});
    std::string key = " " + name + "=";
    size_t at = r.out.find(key);
    if (at == std::string::npos) return ~0ull;
    return std::stoull(r.out.substr(at + key.size()));
  }

  static absl::Status* st_;
  static WritdInstance* writd_;
  static std::string *work_, *agent_, *outside_, *outside_rel_;
  static Listener *deny_, *ok_;
};
absl::Status* AdoptE2e::st_ = nullptr;
WritdInstance* AdoptE2e::writd_ = nullptr;
std::string* AdoptE2e::work_ = nullptr;
std::string* AdoptE2e::agent_ = nullptr;
std::string* AdoptE2e::outside_ = nullptr;
std::string* AdoptE2e::outside_rel_ = nullptr;
Listener* AdoptE2e::deny_ = nullptr;
Listener* AdoptE2e::ok_ = nullptr;

TEST_F(AdoptE2e, MatchingAgentStartedOutsideWritIsAdoptedAndGoverned) {
  const std::string w = *work_ + "/m";
  std::filesystem::create_directories(w);
  const uint64_t adopted_before = Counter("adopt_adopted");
  // sleep first (an allowed exec), so the test can look at the process while it is in its task.
  std::string script = absl::StrCat(
      "/bin/sleep 1; ", "echo x 2>", w, "/deny.err >/dev/tcp/127.0.0.1/", deny_->port,
      "; echo $? > ", w, "/deny.rc; ", "echo y >/dev/tcp/127.0.0.1/", ok_->port, "; echo $? > ", w,
      "/ok.rc; ", "/usr/bin/id > /dev/null; echo $? > ", w, "/id.rc; echo done > ", w, "/done");
  pid_t pid = StartOutside(*outside_, {*agent_, "-c", script});
  ASSERT_GT(pid, 0);

  json ts = writd_->WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "task_start" && e.contains("process") &&
           e["process"].value("pid", 0) == pid;
  });
  ASSERT_FALSE(ts.is_null()) << writd_->log();
  EXPECT_EQ(ts["task"]["adopted"], true) << ts.dump();
  EXPECT_EQ(ts["task"]["workload"], "test-agent");
  EXPECT_EQ(ts["agent"]["spiffe_id"], "spiffe://example.org/agent/adopted");
  EXPECT_EQ(ts["agent"]["intent"], "t-adopted");
  EXPECT_EQ(ts["agent"]["principal"], "user:adopt-test@example.org");
  EXPECT_EQ(ts["process"]["exe"], *agent_);
  EXPECT_EQ(ts["task"]["params"]["agent"], *agent_);
  const std::string task = ts["agent"]["task_id"];
  ASSERT_FALSE(task.empty());
  // Now in the task's own cgroup under writd's subtree, not where it was started.
  auto cg = identity::ProcessCgroup(pid);
  ASSERT_TRUE(cg.ok()) << cg.status();
  EXPECT_TRUE(absl::EndsWith(ts["task"].value("cgroup", ""), *cg)) << *cg << " vs " << ts.dump();
  EXPECT_THAT(*cg, HasSubstr("/" + task));
  EXPECT_FALSE(absl::StartsWith(*cg, *outside_rel_));

  EXPECT_EQ(WaitChild(pid, std::chrono::seconds(15)), 0) << writd_->log();
  EXPECT_EQ(Slurp(w + "/done"), "done\n");
  EXPECT_EQ(Slurp(w + "/deny.rc"), "1\n");  // connect refused by the task's table: EPERM
  EXPECT_THAT(Slurp(w + "/deny.err"), HasSubstr("Operation not permitted"));
  EXPECT_EQ(Slurp(w + "/ok.rc"), "0\n");    // the allowed destination works
  EXPECT_EQ(Slurp(w + "/id.rc"), "137\n");  // exec outside the intent: SIGKILL before it ran

  ASSERT_FALSE(TaskEnd(task).is_null()) << writd_->log();
  auto evs = writd_->TaskEvents(task);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front()["kind"], "task_start");  // nothing of the agent before its task_start
  bool connect_denied = false, exec_killed = false;
  for (const auto& e : evs) {
    if (e["kind"] == "connect" && e["network"].value("dst_port", 0) == deny_->port) {
      EXPECT_EQ(e["verdict"], "violation");
      EXPECT_EQ(e["outcome"], "prevented");
      connect_denied = true;
    }
    if (e["kind"] == "exec" && e["process"].value("exe", "") == RealPath("/usr/bin/id")) {
      EXPECT_EQ(e["verdict"], "violation");
      EXPECT_EQ(e["outcome"], "killed");
      exec_killed = true;
    }
  }
  EXPECT_TRUE(connect_denied);
  EXPECT_TRUE(exec_killed);
  EXPECT_EQ(Counter("adopt_adopted"), adopted_before + 1);
}

TEST_F(AdoptE2e, NonMatchingProcessIsLeftAloneAndRunsNormally) {
  const std::string w = *work_ + "/n";
  std::filesystem::create_directories(w);
  const uint64_t misses_before = Counter("adopt_misses");
  // Same binary (so the kernel pre-filter makes it a candidate), but not in the workload's cgroup.
  std::string script = absl::StrCat("echo x >/dev/tcp/127.0.0.1/", deny_->port, "; echo $? > ", w,
                                    "/deny.rc; ", "/usr/bin/id > /dev/null; echo $? > ", w,
                                    "/id.rc; cat /proc/self/cgroup > ", w, "/cg");
  auto own = identity::ProcessCgroup(getpid());
  ASSERT_TRUE(own.ok());
  ASSERT_FALSE(absl::StartsWith(*own, *outside_rel_));
  pid_t pid = StartOutside("", {*agent_, "-c", script});
  ASSERT_GT(pid, 0);
  EXPECT_EQ(WaitChild(pid, std::chrono::seconds(15)), 0) << writd_->log();
  EXPECT_EQ(Slurp(w + "/deny.rc"), "0\n");  // no task: the connect is nobody's business
  EXPECT_EQ(Slurp(w + "/id.rc"), "0\n");
  EXPECT_THAT(Slurp(w + "/cg"), HasSubstr("0::" + *own));  // never moved
  // It was a candidate (stopped by the kernel and continued: the exit above proves the continue).
  EXPECT_EQ(Counter("adopt_misses"), misses_before + 1)
      << writd_->Writ({"status"}).out << writd_->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (const auto& e : writd_->Events()) {
    if (e.value("kind", "") == "task_start" && e.contains("process")) {
      EXPECT_NE(e["process"].value("pid", 0), pid) << e.dump();
    }
  }
}

// ---- sub-agents: a child task cannot outlive its parent's authority
// --------------------------------

TEST_F(AdoptE2e, RevokingTheParentEndsAndRevokesItsSubAgent) {
  const std::string p_id = "spiffe://example.org/agent/parent-revoke";
  const std::string c_id = "spiffe://example.org/agent/child-revoke";
  pid_t parent = writd_->WritAsync(
      {"run", "--agent", p_id, "--intent", "t-open", "--", "/bin/sleep", "30"}, "parent-r");
  json pstart = TaskStartOf(p_id);
  ASSERT_FALSE(pstart.is_null()) << writd_->log();
  const std::string ptask = pstart["agent"]["task_id"];
  pid_t child = writd_->WritAsync(
      {"run", "--parent", ptask, "--agent", c_id, "--intent", "t-open", "--", "/bin/sleep", "30"},
      "child-r");
  json cstart = TaskStartOf(c_id);
  ASSERT_FALSE(cstart.is_null()) << writd_->log();
  const std::string ctask = cstart["agent"]["task_id"];
  EXPECT_EQ(cstart["agent"]["parent_task"], ptask);
  // A grandchild too: the revocation reaches every level, and each task is killed exactly once.
  const std::string g_id = "spiffe://example.org/agent/grandchild-revoke";
  pid_t grandchild = writd_->WritAsync(
      {"run", "--parent", ctask, "--agent", g_id, "--intent", "t-open", "--", "/bin/sleep", "30"},
      "grandchild-r");
  json gstart = TaskStartOf(g_id);
  ASSERT_FALSE(gstart.is_null()) << writd_->log();
  const std::string gtask = gstart["agent"]["task_id"];
  // The commands run (their execs are attributed) before the parent is revoked.
  for (const std::string& id : {ctask, gtask}) {
    ASSERT_FALSE(writd_
                     ->WaitForEvent([&](const json& e) {
                       return e.value("kind", "") == "exec" &&
                              e["agent"].value("task_id", "") == id;
                     })
                     .is_null());
  }

  CmdResult r = writd_->Writ({"revoke", ptask});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [task, proc, name] : {std::make_tuple(ctask, child, "child-r"),
                                         std::make_tuple(gtask, grandchild, "grandchild-r")}) {
    json end = TaskEnd(task);
    ASSERT_FALSE(end.is_null()) << writd_->log();
    EXPECT_EQ(end["task"]["reason"], "parent_revoked") << task;
    CmdResult cr = writd_->WaitAsync(proc, name);
    EXPECT_EQ(cr.exit_code, 137) << task << ": " << cr.err;  // its processes were killed
    int revoked = 0, killed = 0;
    for (const auto& e : writd_->TaskEvents(task)) {
      if (e.value("kind", "") != "action") continue;
      if (e["action"]["type"] == "revoke" && e["action"]["target"] == task) revoked++;
      if (e["action"]["type"] == "kill") killed++;
    }
    EXPECT_EQ(revoked, 1) << task;
    EXPECT_EQ(killed, 1) << task;  // one cgroup.kill, one event: not once per ancestor
  }

  // The parent itself keeps running (revocation takes its credentials, not its processes).
  EXPECT_TRUE(TaskEnd(ptask, std::chrono::milliseconds(300)).is_null());
  ASSERT_EQ(writd_->Writ({"kill", ptask}).exit_code, 0);
  ASSERT_FALSE(TaskEnd(ptask).is_null());
  writd_->WaitAsync(parent, "parent-r");
}

TEST_F(AdoptE2e, ParentEndingEndsItsSubAgentWithATruthfulReason) {
  const std::string p_id = "spiffe://example.org/agent/parent-end";
  const std::string c_id = "spiffe://example.org/agent/child-end";
  pid_t parent = writd_->WritAsync(
      {"run", "--agent", p_id, "--intent", "t-open", "--", "/bin/sleep", "2"}, "parent-e");
  json pstart = TaskStartOf(p_id);
  ASSERT_FALSE(pstart.is_null()) << writd_->log();
  const std::string ptask = pstart["agent"]["task_id"];
  pid_t child = writd_->WritAsync(
      {"run", "--parent", ptask, "--agent", c_id, "--intent", "t-open", "--", "/bin/sleep", "30"},
      "child-e");
  json cstart = TaskStartOf(c_id);
  ASSERT_FALSE(cstart.is_null()) << writd_->log();
  const std::string ctask = cstart["agent"]["task_id"];

  json pend = TaskEnd(ptask);
  ASSERT_FALSE(pend.is_null()) << writd_->log();
  EXPECT_EQ(pend["task"]["reason"], "exited");
  EXPECT_EQ(writd_->WaitAsync(parent, "parent-e").exit_code, 0);
  json cend = TaskEnd(ctask);
  ASSERT_FALSE(cend.is_null()) << writd_->log();
  EXPECT_EQ(cend["task"]["reason"], "parent_ended");  // not "exited": it did not exit by itself
  CmdResult cr = writd_->WaitAsync(child, "child-e");
  EXPECT_EQ(cr.exit_code, 137) << cr.err;
  bool revoked = false;
  for (const auto& e : writd_->TaskEvents(ctask)) {
    if (e.value("kind", "") == "action" && e["action"]["type"] == "revoke") revoked = true;
  }
  EXPECT_TRUE(revoked);
}

}  // namespace
}  // namespace writ::testlib
