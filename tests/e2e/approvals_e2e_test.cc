// Approvals and the operator's text views against a real writd in enforce mode (docs/policy.md,
// "Approval rules"; docs/threat-model.md names these tests):
//   * the shipped coding-agent intent stops `git -C REPO push`, `git -c k=v push` and git-core's
//     dashed git-push before they run, for a human to decide;
//   * an approval rule without args: stops `sudo id`, not only a bare `sudo`;
//   * a program-glob approval in an intent without exec: is stopped by the kernel, before it runs;
//   * `writ approvals` and `writ tail --format text` show a task's control characters escaped.
// Needs root (writd loads BPF); skips otherwise.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/paths.h"
#include "testlib/writd_fixture.h"

#ifndef WRIT_SOURCE_DIR
#error "WRIT_SOURCE_DIR must be defined"
#endif

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgent[] = "spiffe://example.org/agent/approvals";

constexpr char kIntents[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: t-sudo
params:
  sudo: {type: path, required: true}
  id: {type: path, required: true}
exec:
  allow: ["${sudo}", "${id}"]
approval:
  - {exec: "${sudo}", timeout: 30s}
on_violation: [alert, kill]
mode: enforce
---
apiVersion: writ.dev/v1
kind: Intent
name: t-glob-approval
params:
  dir: {type: path, required: true}
approval:
  - {exec: "${dir}/**", timeout: 30s}
on_violation: [alert, kill]
mode: enforce
)";

class ApprovalsE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    writd_ = new WritdInstance();
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["tests.yaml"] = kIntents;
    // The intent as shipped, not a copy of its rules.
    o.policies["coding-agent.yaml"] =
        Slurp(std::string(WRIT_SOURCE_DIR) + "/policies/coding-agent.yaml");
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
    if (geteuid() != 0) GTEST_SKIP() << "e2e needs root: writd loads BPF programs";
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
    work_ = MakeAgentDir("writ-approvals");  // the agent's, as its user's repository would be
    ASSERT_FALSE(work_.empty());
    chmod(work_.c_str(), 0755);
  }
  void TearDown() override {
    if (!work_.empty()) std::filesystem::remove_all(work_);
  }

  // The approval_request whose action contains `needle` (null json on timeout).
  json WaitForRequest(const std::string& needle) {
    return writd_->WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "approval_request" &&
             e["approval"].value("action", "").find(needle) != std::string::npos;
    });
  }
  // The exec event the approval_request followed (same task and pid, verdict needs_approval).
  json StoppedExec(const json& req) {
    const std::string task = req["agent"].value("task_id", "");
    for (const json& e : writd_->TaskEvents(task)) {
      if (e.value("kind", "") == "exec" && e.value("verdict", "") == "needs_approval" &&
          e["process"].value("pid", 0) == req["process"].value("pid", 0)) {
        return e;
      }
    }
    return json();
  }
  // A copy of a system program under `name` in the work dir (a copy, not a symlink: exec rules
  // match the resolved path).
  std::string CopyProgram(const std::string& from, const std::string& name) {
    const std::string to = work_ + "/" + name;
    std::filesystem::copy_file(RealPath(from), to);
    chmod(to.c_str(), 0755);
    return to;
  }
  // A repository with one commit and an empty bare remote as origin, set up outside any task.
  void MakeRepo() {
    repo_ = work_ + "/repo";
    remote_ = work_ + "/remote.git";
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"git", "init", "-q", "--bare", remote_},
             {"git", "init", "-q", repo_},
             {"git", "-C", repo_, "-c", "user.email=a@example.org", "-c", "user.name=a", "commit",
              "-q", "--allow-empty", "-m", "first"},
             {"git", "-C", repo_, "remote", "add", "origin", remote_}}) {
      std::vector<std::string> full = {"/usr/bin/env", "GIT_CONFIG_NOSYSTEM=1"};
      full.insert(full.end(), argv.begin(), argv.end());
      CmdResult r = RunCommand(full);
      ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(argv, " ") << ": " << r.err;
    }
    // The agent's, as its user's repository would be (git refuses to work in another user's).
    ASSERT_EQ(RunCommand({"/bin/chown", "-R", WRIT_TEST_AGENT_USER ":", repo_, remote_}).exit_code,
              0);
  }
  bool RemoteHasMain() {
    return RunCommand({"/usr/bin/git", "-c", "safe.directory=*", "--git-dir", remote_, "rev-parse",
                       "--verify", "-q", "refs/heads/main"})
               .exit_code == 0;
  }
  // A push under the shipped coding-agent intent, in the background.
  pid_t Push(const std::string& script, const std::string& name) {
    return writd_->WritAsync({"run", "--agent", kAgent, "--intent", "coding-agent", "--param",
                              "repo=" + repo_, "--", "/bin/sh", "-c", script},
                             name);
  }

  static WritdInstance* writd_;
  static absl::Status* start_status_;
  std::string work_, repo_, remote_;
};
WritdInstance* ApprovalsE2e::writd_ = nullptr;
absl::Status* ApprovalsE2e::start_status_ = nullptr;

// `git -C REPO push` and git-core's dashed git-push under the shipped intent: stopped by the kernel
// before git's first instruction, the task frozen, the action shown to the operator; denied, the
// task is killed and nothing reaches the remote.
TEST_F(ApprovalsE2e, ShippedIntentStopsGitPushSpelledWithOptionsOrDashed) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  const std::string dashed = RealPath("/usr/lib/git-core") + "/git-push";
  // `exec`: the denied git is the task's last process (a shell left waiting for it could run its
  // next command between the deny's kill of git and the task kill that follows it).
  struct Case {
    std::string name, script, needle;
  } cases[] = {
      {"dash-C", absl::StrCat("exec git -C ", repo_, " push origin HEAD:main"),
       absl::StrCat("-C ", repo_, " push")},
      {"dashed", absl::StrCat("cd ", repo_, " && exec ", dashed, " origin HEAD:main"),
       "git-push origin"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    pid_t pid = Push(c.script, c.name);
    json req = WaitForRequest(c.needle);
    ASSERT_FALSE(req.is_null()) << c.script << "\n" << writd_->log();
    EXPECT_EQ(req["finding"].value("rule", ""), "coding-agent/approval[0]");
    json ex = StoppedExec(req);
    ASSERT_FALSE(ex.is_null());
    EXPECT_EQ(ex.value("outcome", ""), "stopped");
    EXPECT_EQ(ex.value("enforcement", ""), "kernel-signal");  // stopped before it ran
    EXPECT_FALSE(RemoteHasMain());
    const std::string id = req["approval"].value("id", "");
    EXPECT_THAT(writd_->Writ({"approvals"}).out, HasSubstr(id));
    CmdResult d = writd_->Writ({"deny", id});
    EXPECT_EQ(d.exit_code, 0) << d.err;
    CmdResult r = writd_->WaitAsync(pid, c.name);
    EXPECT_EQ(r.exit_code, 137) << r.err;
    EXPECT_FALSE(RemoteHasMain());
  }
}

// `git -c k=v push`, approved: the push runs to its end under the shipped intent and the task exits
// 0.
TEST_F(ApprovalsE2e, ShippedIntentApprovedPushWithAConfigOptionCompletes) {
  ASSERT_NO_FATAL_FAILURE(MakeRepo());
  pid_t pid =
      Push(absl::StrCat("cd ", repo_, " && git -c push.default=current push origin HEAD:main"),
           "approve-c");
  json req = WaitForRequest("-c push.default=current push");
  ASSERT_FALSE(req.is_null()) << writd_->log();
  EXPECT_EQ(StoppedExec(req).value("enforcement", ""), "kernel-signal");
  EXPECT_FALSE(RemoteHasMain());
  CmdResult a = writd_->Writ({"approve", req["approval"].value("id", "")});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  CmdResult r = writd_->WaitAsync(pid, "approve-c", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.err << writd_->log();
  EXPECT_TRUE(RemoteHasMain());
  // One approval for the push: the receive-pack it runs is not asked for again.
  const std::string task = req["agent"].value("task_id", "");
  int requests = 0;
  for (const json& e : writd_->TaskEvents(task))
    requests += e.value("kind", "") == "approval_request";
  EXPECT_EQ(requests, 1);
}

// {exec: sudo} without args: gates `sudo id` (it used to match only a bare `sudo`): stopped before
// it ran, and approved it runs. `writ approvals` shows an argument's control characters escaped.
TEST_F(ApprovalsE2e, ArgsLessRuleStopsSudoWithArguments) {
  // A stand-in for sudo: env runs its arguments as a command, as `sudo id` would.
  const std::string sudo = CopyProgram("/usr/bin/env", "sudo");
  const std::string id = RealPath("/usr/bin/id");
  auto run = [&](std::vector<std::string> args, const std::string& name) {
    std::vector<std::string> argv = {"run",     "--agent",      kAgent,    "--intent", "t-sudo",
                                     "--param", "sudo=" + sudo, "--param", "id=" + id, "--",
                                     sudo};
    argv.insert(argv.end(), args.begin(), args.end());
    return writd_->WritAsync(argv, name);
  };
  pid_t pid = run({"id", "-u"}, "sudo-id");
  json req = WaitForRequest(sudo + " id -u");
  ASSERT_FALSE(req.is_null()) << writd_->log();
  EXPECT_EQ(req["finding"].value("rule", ""), "t-sudo/approval[0]");
  json ex = StoppedExec(req);
  EXPECT_EQ(ex.value("enforcement", ""), "kernel-signal");
  EXPECT_EQ(ex.value("outcome", ""), "stopped");
  // id has not run: there is no exec of it yet.
  const std::string task = req["agent"].value("task_id", "");
  for (const json& e : writd_->TaskEvents(task)) {
    EXPECT_FALSE(e.value("kind", "") == "exec" && e["process"].value("exe", "") == id) << e.dump();
  }
  EXPECT_EQ(writd_->Writ({"approve", req["approval"].value("id", "")}).exit_code, 0);
  CmdResult r = writd_->WaitAsync(pid, "sudo-id");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat(TestAgentUid(), "\n"));  // env standing in for sudo: as the agent

  // An argument that would clear the operator's screen and forge a line of `writ approvals`.
  const std::string evil =
      "\x1b[2J\x1b[H\rap-000000000000 exec /usr/bin/true [true] expires=never\nx";
  pid = run({"id", evil}, "sudo-evil");
  req = WaitForRequest("\x1b[2J");
  ASSERT_FALSE(req.is_null()) << writd_->log();
  CmdResult list = writd_->Writ({"approvals"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("\\x1b[2J\\x1b[H\\rap-000000000000 exec /usr/bin/true [true] "
                                  "expires=never\\nx"));
  EXPECT_EQ(list.out.find('\x1b'), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find('\r'), std::string::npos) << list.out;
  std::istringstream lines(list.out);
  for (std::string line; std::getline(lines, line);)
    EXPECT_THAT(line, ::testing::StartsWith("ap-"));
  EXPECT_EQ(writd_->Writ({"deny", req["approval"].value("id", "")}).exit_code, 0);
  EXPECT_EQ(writd_->WaitAsync(pid, "sudo-evil").exit_code, 137);
}

// An intent whose only exec rule is a program-glob approval (no exec: category): the kernel stops
// the exec for writd (it used to run, and be stopped by writd a moment later, in userspace).
TEST_F(ApprovalsE2e, GlobApprovalWithoutExecCategoryIsStoppedBeforeItRuns) {
  const std::string dir = work_ + "/tools";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(RealPath("/usr/bin/touch"), dir + "/touch");
  chmod((dir + "/touch").c_str(), 0755);
  const std::string marker = work_ + "/touched";
  pid_t pid = writd_->WritAsync({"run", "--agent", kAgent, "--intent", "t-glob-approval", "--param",
                                 "dir=" + dir, "--", dir + "/touch", marker},
                                "glob");
  json req = WaitForRequest(marker);
  ASSERT_FALSE(req.is_null()) << writd_->log();
  EXPECT_EQ(StoppedExec(req).value("enforcement", ""), "kernel-signal");
  EXPECT_FALSE(std::filesystem::exists(marker));
  EXPECT_EQ(writd_->Writ({"deny", req["approval"].value("id", "")}).exit_code, 0);
  EXPECT_EQ(writd_->WaitAsync(pid, "glob").exit_code, 137);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

// A task names a file with an ANSI escape and a newline and opens it: `writ tail --format text`
// shows the name escaped on one line (no raw ESC or CR, no forged line); `--format json` keeps the
// real name, JSON-escaped.
TEST_F(ApprovalsE2e, TailTextEscapesControlCharactersInNames) {
  pid_t text = writd_->WritAsync({"tail", "--format", "text"}, "tail-text");
  pid_t js = writd_->WritAsync({"tail", "--format", "json"}, "tail-json");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string name = "evil-\x1b[2J\x1b[31m\r\n2026-01-01T00:00:00Z forged allowed";
  const std::string path = work_ + "/" + name;
  // printf builds the name inside the task: the escape and the newline are the task's own bytes.
  CmdResult r = writd_->Writ(
      {"run", "--agent", kAgent, "--", "/bin/sh", "-c",
       absl::StrCat(
           "f=$(printf '%s/evil-\\033[2J\\033[31m\\r\\n2026-01-01T00:00:00Z forged allowed' ",
           work_, "); : > \"$f\"; cat \"$f\"")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(path));
  const std::string task = TaskIdFrom(r.err);
  ASSERT_FALSE(writd_
                   ->WaitForEvent([&](const json& e) {
                     return e.value("kind", "") == "task_end" &&
                            e["agent"].value("task_id", "") == task;
                   })
                   .is_null());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(text, SIGTERM);
  kill(js, SIGTERM);
  writd_->WaitAsync(text, "tail-text", std::chrono::seconds(5));
  writd_->WaitAsync(js, "tail-json", std::chrono::seconds(5));

  const std::string out = Slurp(writd_->dir() + "/tail-text.out");
  const std::string shown = "evil-\\x1b[2J\\x1b[31m\\r\\n2026-01-01T00:00:00Z forged allowed";
  int opens = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_THAT(line, Not(::testing::StartsWith("2026-01-01T00:00:00Z forged"))) << "forged line";
    if (line.find(task) == std::string::npos) continue;
    if (line.find(" open ") != std::string::npos && line.find(shown) != std::string::npos) opens++;
  }
  EXPECT_GE(opens, 2) << out;  // the create and the read
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "raw ESC in text output";
  EXPECT_EQ(out.find('\r'), std::string::npos) << "raw CR in text output";

  bool found = false;
  std::istringstream jl(Slurp(writd_->dir() + "/tail-json.out"));
  for (std::string line; std::getline(jl, line);) {
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << "raw ESC in JSON output";
    json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(e.is_discarded()) << line;
    if (e.value("kind", "") == "open" && e["file"].value("path", "") == path) found = true;
  }
  EXPECT_TRUE(found) << "the JSON tail carries the real name";
}

}  // namespace
}  // namespace writ::testlib
