// The evasion suite's fixtures (tests/e2e/evasion_*_test.cc, one binary: evasion_e2e_test).
//
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
//
// Two attacker models (docs/threat-model.md): every Evasion test runs for an unprivileged agent
// (the default: `writ run --user writ-agent`; the task's files are the agent's own) and for a root
// agent that opted in (`--allow-root`, intents with run_as_root). A test whose outcome differs by
// model (the kernel's own permission checks stop the unprivileged agent first) says what each gets.
#pragma once

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

namespace writ::testlib::evasion {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using testlib::RealPath;
using testlib::UdpReceiver;
using testlib::UnixListener;

constexpr char kAgent[] = "spiffe://example.org/agent/evader";

// The suite's intents (evasion_fixture.cc).
extern const char kIntents[];

enum class Model { kUnprivileged, kRoot };
inline void PrintTo(Model m, std::ostream* os) {
  *os << (m == Model::kRoot ? "root" : "unprivileged");
}

// Which rung refuses self-protection attempts (ExpectSelfPrevented): writ run's seccomp filter, or,
// where BPF-LSM loads, the LSM hooks (writ run then installs no filter).
void SetSelfRungLsm(bool lsm);

class Evasion : public ::testing::TestWithParam<Model> {
 protected:
  static void SetUpTestSuite() {
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["evasion.yaml"] = kIntents;
    writd_.Start(o);
    if (writd_.status().ok()) {
      const std::string st = writd_->Writ({"status"}).out;
      lsm_ = RungActive(st, "open: lsm ");
      SetSelfRungLsm(lsm_);
      lineage_ = RungActive(st, "lineage: ");
      unix_hook_ = RungActive(st, "unix: cgroup-bpf (") || RungActive(st, "unix: lsm (");
      printf("evasion: rungs of this kernel: %s, kernel kill of the actor's shell %s\n",
             lsm_ ? "BPF-LSM" : "tracepoints and cgroup hooks", lineage_ ? "yes" : "no");
    }
  }

  static void TearDownTestSuite() { writd_.Stop(); }
  void SetUp() override {
    WRIT_SUITE_WRITD_READY(writd_);
    char tmpl[] = "/tmp/writ-evasion-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    work_ = RealPath(tmpl);
    secret_ = work_ + "/secret";
    std::filesystem::create_directories(secret_);
    std::ofstream(secret_ + "/key") << "TOPSECRET";
    if (!root()) {
      ASSERT_TRUE(EnsureTestUsers().ok());
    }
  }
  void TearDown() override {
    if (!work_.empty()) std::filesystem::remove_all(work_);
  }

  CmdResult Run(const std::string& script, const std::vector<std::string>& intent_args) {
    // The unprivileged agent owns what the test made for it (its work tree, its sockets), so what
    // stops it is writ, not the files' modes. WritdInstance::Writ adds `--user writ-agent`.
    std::vector<std::string> args = {"run", "--agent", kAgent};
    if (root()) {
      args.push_back("--allow-root");
    } else {
      GiveToAgent(work_);
    }
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
      return e.value("kind", "") == "open" && e.contains("file") &&
             e["file"].value("path", "") == path;
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
  bool root() const { return GetParam() == Model::kRoot; }
  // chown -R to the test agent (writ-agent).
  static void GiveToAgent(const std::string& dir) {
    const uid_t uid = TestAgentUid();
    const gid_t gid = TestAgentGid();
    std::error_code ec;
    lchown(dir.c_str(), uid, gid);
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      lchown(it->path().c_str(), uid, gid);
    }
  }

  static SuiteWritd writd_;
  static bool lsm_;      // the BPF-LSM rung is active (writ status)
  static bool lineage_;  // a kernel deny also kills the actor's shell (writ status)
  // Unix connects are refused before the lookup: by lsm/socket_connect where BPF-LSM loads, else by
  // cgroup/connect_unix (Linux 6.7+; writ status).
  static bool unix_hook_;
  std::string work_, secret_;
  const std::string helper_ = EVASION_HELPER;
};

// exec.deny of an exact path: refused by lsm/bprm_check_security (prevented) or killed before its
// first instruction by the exec tracepoint (killed); the task's kill response runs either way.
void ExpectExecKilled(const CmdResult& r, const std::vector<json>& evs, const std::string& exe,
                      bool lsm, bool lineage);
// A self-protection attempt the launcher's seccomp filter refused: EPERM to the caller, an
// OWASP-ASI10 finding (kind "self"), and the task killed by its response.
json ExpectSelfPrevented(const CmdResult& r, const std::vector<json>& evs,
                         const std::string& syscall, const std::string& target);
// Alive and not a zombie: writd is the test's child, and kill(pid, 0) succeeds on a zombie too.
bool Alive(pid_t pid);
std::set<pid_t> Threads(pid_t pid);
// `writ --socket S ARGS...` started inside process group `pgid` (output to files under dir).
CmdResult WritInGroup(const WritdInstance& w, pid_t pgid, const std::vector<std::string>& args);

// Each of these needs a writd of its own (enforce mode, no intents): they race, kill and restart
// it.
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
    const std::string st = w_.Writ({"status"}).out;
    threads_ = RungActive(st, "self-threads: ");
    lsm_ = RungActive(st, "self: lsm (");
    SetSelfRungLsm(lsm_);
  }
  WritdInstance w_;
  // BPF-LSM refuses signals to writd and its guardian (lsm/task_kill), with or without the
  // launcher's filter and to any of their threads (the VM tier's 6.1).
  bool lsm_ = false;
  // The kernel resolves a thread id to its process (bpf_task_from_pid, 6.2+). Without it (Debian
  // 12's 6.1, the VM tier) only writd's and the guardian's process ids are recognised as theirs: a
  // signal to another writd thread is refused by the launcher's filter all the same, but not
  // reported, and the fallback (no filter) does not see it at all.
  bool threads_ = true;
};

}  // namespace writ::testlib::evasion
