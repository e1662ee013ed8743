// The evasion suite's shared fixture and helpers (evasion_fixture.h).
#include "evasion_fixture.h"

namespace writ::testlib::evasion {

// Every intent allows a root agent (run_as_root): the root model opts in on the command line too
// (Run passes --allow-root); the unprivileged model runs the same intents as writ-agent.
const char kIntents[] = R"(apiVersion: writ.dev/v1
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

SuiteWritd Evasion::writd_;
bool Evasion::lsm_ = false;
bool Evasion::lineage_ = false;
bool Evasion::unix_hook_ = false;

void ExpectExecKilled(const CmdResult& r, const std::vector<json>& evs, const std::string& exe,
                      bool lsm, bool lineage) {
  if (lineage) {
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  }
  json ev;
  for (const auto& e : evs) {
    if (e.value("kind", "") == "exec" && e["process"].value("exe", "") == exe) ev = e;
  }
  ASSERT_FALSE(ev.is_null()) << "no exec of " << exe;
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], lsm ? "prevented" : "killed");
  EXPECT_EQ(ev["enforcement"], lsm ? "lsm" : "kernel-signal");
}

static bool self_rung_lsm = false;
void SetSelfRungLsm(bool lsm) { self_rung_lsm = lsm; }

// A self-protection attempt the launcher's seccomp filter refused (or, where BPF-LSM loads, an LSM
// hook: writ run then installs no filter): EPERM to the caller, an OWASP-ASI10 finding (kind
// "self"), and the task killed by its response (`; sleep 5; echo after` never finishes). On the LSM
// rung, kill(-1) is refused once per protected process it would reach (target writd or guardian),
// and pidfd_open, which no LSM hook sees, is reported at its exit with the caller killed before it
// returns (killed_after).
json ExpectSelfPrevented(const CmdResult& r, const std::vector<json>& evs,
                         const std::string& syscall, const std::string& target) {
  const bool lsm = self_rung_lsm;
  const bool after = lsm && syscall == "pidfd_open";
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
  EXPECT_EQ(ev["outcome"], after ? "killed_after" : "prevented");
  EXPECT_EQ(ev["enforcement"], after ? "kernel-signal" : lsm ? "lsm" : "seccomp");
  if (after) {
    EXPECT_GE(ev["syscall"]["result"].get<int>(), 0);
  } else {
    EXPECT_EQ(ev["syscall"]["result"], -EPERM);
  }
  if (lsm && target == "all") {
    EXPECT_THAT(ev["syscall"].value("target", ""), ::testing::AnyOf("writd", "guardian"));
  } else {
    EXPECT_EQ(ev["syscall"].value("target", ""), target);
  }
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

bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  const size_t rp = line.rfind(')');
  return rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] != 'Z';
}

std::set<pid_t> Threads(pid_t pid) {
  std::set<pid_t> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    out.insert(std::atoi(e.path().filename().c_str()));
  }
  return out;
}

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

INSTANTIATE_TEST_SUITE_P(, Evasion, ::testing::Values(Model::kUnprivileged, Model::kRoot),
                         [](const ::testing::TestParamInfo<Model>& i) {
                           return i.param == Model::kRoot ? "root" : "unprivileged";
                         });

}  // namespace writ::testlib::evasion
