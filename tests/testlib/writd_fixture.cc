#include "testlib/writd_fixture.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "identity/cgroup.h"
#include "util/util.h"

namespace writ::testlib {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

int Decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

pid_t SpawnTo(const std::vector<std::string>& argv, const std::string& out,
              const std::string& err) {
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    setpgid(0, 0);  // its own group: a timeout kills what it started too
    std::vector<char*> v;
    for (const auto& s : argv) v.push_back(const_cast<char*>(s.c_str()));
    v.push_back(nullptr);
    execv(v[0], v.data());
    _exit(127);
  }
  return pid;
}

// Waits for pid with a bound; on timeout kills its process group. Returns decoded status, -1 on
// timeout.
int WaitBounded(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return Decode(status);
    if (r < 0) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// The log_path a sanitizer runtime was given in VAR (e.g. ASAN_OPTIONS="...:log_path=/x/r"), or "".
std::string LogPathFrom(const char* var) {
  const char* v = getenv(var);
  if (!v) return "";
  std::string opts = v;
  size_t at = 0;
  std::string path;
  // Options are separated by ':', ',' or white space (sanitizer_common's flag parser); the last
  // wins.
  while ((at = opts.find("log_path=", at)) != std::string::npos) {
    if (at == 0 || std::string(" :,\t\n").find(opts[at - 1]) != std::string::npos) {
      size_t b = at + strlen("log_path=");
      path = opts.substr(b, opts.find_first_of(" :,\t\n", b) - b);
    }
    at++;
  }
  return path == "stderr" || path == "stdout" ? "" : path;
}

void FailOnSanitizerReport(const std::string& who, pid_t pid, const std::string& err) {
  std::string report = SanitizerReport(pid, err);
  if (!report.empty())
    ADD_FAILURE() << who << " (pid " << pid << ") left a sanitizer report:\n" << report;
}

}  // namespace

std::string SanitizerReport(pid_t pid, const std::string& stderr_text) {
  std::string out;
  // The first line of each runtime's report; UBSan's "file:line: runtime error:" is followed by
  // this.
  static const char* const kMarkers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                         "SUMMARY: UndefinedBehaviorSanitizer",
                                         "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer"};
  size_t first = std::string::npos;
  for (const char* m : kMarkers) first = std::min(first, stderr_text.find(m));
  if (first != std::string::npos) {
    size_t line = stderr_text.rfind('\n', first);
    // UBSan prints "file:line:col: runtime error: ..." and the stack before its SUMMARY line.
    size_t ub = stderr_text.find(": runtime error: ");
    if (ub != std::string::npos && ub < first) line = stderr_text.rfind('\n', ub);
    out = stderr_text.substr(line == std::string::npos ? 0 : line + 1, 16000);
  }
  for (const char* var : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"}) {
    std::string base = LogPathFrom(var);
    if (base.empty()) continue;
    std::string file = Slurp(absl::StrCat(base, ".", pid));
    if (!file.empty() && out.find(file.substr(0, 200)) == std::string::npos) {
      absl::StrAppend(&out, base, ".", pid, ":\n", file.substr(0, 16000));
    }
  }
  return out;
}

std::vector<std::string> WritInTaskArgv() {
  const char* asan = getenv("ASAN_OPTIONS");
  std::string opts = asan && *asan ? absl::StrCat(asan, ":detect_leaks=0") : "detect_leaks=0";
  return {"/usr/bin/env", "ASAN_OPTIONS=" + opts, WRIT_BIN};
}

CmdResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  char tmpl[] = "/tmp/writ-cmd-XXXXXX";
  if (!mkdtemp(tmpl)) return {};
  std::string d = tmpl;
  pid_t pid = SpawnTo(argv, d + "/out", d + "/err");
  CmdResult r;
  r.exit_code = WaitBounded(pid, timeout);
  r.out = Slurp(d + "/out");
  r.err = Slurp(d + "/err");
  std::filesystem::remove_all(d);
  FailOnSanitizerReport(argv[0], pid, r.err);
  return r;
}

bool RungActive(const std::string& status, const std::string& prefix) {
  const size_t pos = status.find("\n  " + prefix);
  if (pos == std::string::npos) return false;
  const size_t end = status.find('\n', pos + 1);
  const std::string line = status.substr(pos + 1, end == std::string::npos ? end : end - pos - 1);
  return line.size() >= 6 && line.compare(line.size() - 6, 6, "active") == 0;
}

std::string TaskIdFrom(const std::string& err) {
  std::smatch m;
  static const std::regex re("writ: task (t-[0-9a-f]+)");
  return std::regex_search(err, m, re) ? m[1].str() : "";
}

WritdInstance::~WritdInstance() {
  if (pid_ > 0) Stop();
  // Whatever a failed test left: kill task processes, remove task cgroups, then the subtree.
  if (!cgroup_root_.empty() && std::filesystem::exists(cgroup_root_)) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(cgroup_root_, ec)) {
      if (!e.is_directory()) continue;
      (void)WriteFile(e.path().string() + "/cgroup.freeze", "0");
      (void)WriteFile(e.path().string() + "/cgroup.kill", "1");
      for (int i = 0; i < 100 && rmdir(e.path().c_str()) != 0; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    rmdir(cgroup_root_.c_str());
  }
  // A writd stopped with tasks registered leaves its programs pinned (by design: enforcement
  // outlives the daemon). A test must not leave them attached for the rest of the run.
  if (!subtree_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all("/sys/fs/bpf/" + subtree_, ec);
  }
  if (!dir_.empty() && !getenv("WRIT_KEEP_TEST_DIRS")) std::filesystem::remove_all(dir_);
}

absl::Status EnsureTestUsers() {
  // What scripts/setup.sh creates on a host (the control group) and what only tests need (an agent
  // user in that group, another outside it). Idempotent; once made, not asked again (three shells
  // per test cost seconds under the vm tier's emulation).
  static std::atomic<bool> made{false};
  if (made.load()) return absl::OkStatus();
  const char* cmds[] = {
      "getent group writ >/dev/null || groupadd --system writ",
      "getent passwd " WRIT_TEST_AGENT_USER
      " >/dev/null || useradd --system --no-create-home "
      "--home-dir /nonexistent --shell /usr/sbin/nologin --groups writ " WRIT_TEST_AGENT_USER,
      "getent passwd " WRIT_TEST_OTHER_USER
      " >/dev/null || useradd --system --no-create-home "
      "--home-dir /nonexistent --shell /usr/sbin/nologin " WRIT_TEST_OTHER_USER,
  };
  for (const char* c : cmds) {
    if (std::system(c) != 0)
      return absl::InternalError(absl::StrCat("test users: `", c, "` failed"));
  }
  made.store(true);
  return absl::OkStatus();
}

uid_t TestAgentUid() {
  struct passwd* pw = getpwnam(WRIT_TEST_AGENT_USER);
  return pw ? pw->pw_uid : static_cast<uid_t>(-1);
}

gid_t TestAgentGid() {
  struct passwd* pw = getpwnam(WRIT_TEST_AGENT_USER);
  return pw ? pw->pw_gid : static_cast<gid_t>(-1);
}

std::string MakeAgentDir(const std::string& prefix) {
  if (!EnsureTestUsers().ok()) return "";
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) return "";
  struct passwd* pw = getpwnam(WRIT_TEST_AGENT_USER);
  if (!pw || chown(tmpl.c_str(), pw->pw_uid, pw->pw_gid) != 0 || chmod(tmpl.c_str(), 0755) != 0) {
    return "";
  }
  char real[PATH_MAX];
  return realpath(tmpl.c_str(), real) ? std::string(real) : tmpl;
}

std::vector<std::string> AsTestAgent(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "run") return args;
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a == "--user" || a == "--allow-root" || absl::StartsWith(a, "--user=")) return args;
  }
  std::vector<std::string> out = {"run", "--user", WRIT_TEST_AGENT_USER};
  out.insert(out.end(), args.begin() + 1, args.end());
  return out;
}

absl::Status WritdInstance::Start(const Options& opts) {
  if (absl::Status st = EnsureTestUsers(); !st.ok()) return st;
  char tmpl[] = "/tmp/writ-e2e-XXXXXX";
  if (!mkdtemp(tmpl)) return absl::InternalError("mkdtemp failed");
  dir_ = tmpl;
  // Agents (an unprivileged test user) drop files here that the test waits for: world-writable and
  // sticky, like /tmp. writd's own state and run dirs below it are its own (0700, 0711).
  chmod(dir_.c_str(), 01777);
  policies_dir_ = dir_ + "/policies";
  std::filesystem::create_directories(policies_dir_);
  for (const auto& [name, text] : opts.policies) std::ofstream(policies_dir_ + "/" + name) << text;
  socket_ = dir_ + "/run/writd.sock";
  events_ = dir_ + "/events.jsonl";
  subtree_ = "writ-test-" + RandomHex(4);
  auto mount = identity::FindCgroup2Mount();
  if (!mount.ok()) return mount.status();
  cgroup_root_ = *mount + "/" + subtree_;
  std::ofstream(dir_ + "/writd.yaml")
      << "mode: " << opts.mode << "\n"
      << "policies: policies\n"
      << "state_dir: " << dir_ << "/state\n"
      << "run_dir: " << dir_ << "/run\n"
      << "events: events.jsonl\n"
      << "cgroup_subtree: " << subtree_ << "\n"
      << "drain_interval: 5ms\n"
      << "housekeeping_interval: 20ms\n"
      << (absl::StrContains(opts.extra_config, "control:") ? "" : "control: {group: writ}\n")
      << opts.extra_config;
  argv_ = {WRITD_BIN, "--config", dir_ + "/writd.yaml"};
  argv_.insert(argv_.end(), opts.extra_args.begin(), opts.extra_args.end());
  return Launch();
}

int WritdInstance::Kill9() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGKILL);
  int rc = WaitBounded(pid_, std::chrono::seconds(10));
  CheckSanitizer(pid_);  // a report written before the kill (writd aborted on its own) still fails
  pid_ = -1;
  return rc;
}

void WritdInstance::CheckSanitizer(pid_t pid) {
  // writd.err is appended to across restarts: only what this writd process added is looked at.
  std::string err = log();
  std::string fresh = err.size() > log_checked_ ? err.substr(log_checked_) : "";
  log_checked_ = err.size();
  FailOnSanitizerReport("writd", pid, fresh);
}

absl::Status WritdInstance::Restart() {
  if (pid_ > 0) return absl::FailedPreconditionError("writd is still running");
  return Launch();
}

absl::Status WritdInstance::Launch() {
  pid_ = SpawnTo(argv_, dir_ + "/writd.out", dir_ + "/writd.err");
  // 15 s, or WRIT_TEST_START_SECONDS (the vm tier's emulated guest loads the programs in ~10 s
  // alone).
  int start_s = 15;
  if (const char* v = getenv("WRIT_TEST_START_SECONDS"); v && atoi(v) > 0) start_s = atoi(v);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(start_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      CheckSanitizer(pid_);
      pid_ = -1;
      return absl::FailedPreconditionError(
          absl::StrCat("writd exited with ", Decode(status), ": ", log()));
    }
    if (access(socket_.c_str(), F_OK) == 0 &&
        Writ({"status"}, std::chrono::seconds(5)).exit_code == 0) {
      return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("writd did not answer within ", start_s, " s: ", log()));
}

int WritdInstance::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int rc = WaitBounded(pid_, std::chrono::seconds(10));
  CheckSanitizer(pid_);  // a leak or error found at exit fails the test, whatever the exit status
  pid_ = -1;
  return rc;
}

CmdResult WritdInstance::Writ(const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {WRIT_BIN, "--socket", socket_};
  const std::vector<std::string> a = AsTestAgent(args);
  argv.insert(argv.end(), a.begin(), a.end());
  return RunCommand(argv, timeout);
}

pid_t WritdInstance::WritAsync(const std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> argv = {WRIT_BIN, "--socket", socket_};
  const std::vector<std::string> a = AsTestAgent(args);
  argv.insert(argv.end(), a.begin(), a.end());
  return SpawnTo(argv, dir_ + "/" + name + ".out", dir_ + "/" + name + ".err");
}

CmdResult WritdInstance::WaitAsync(pid_t pid, const std::string& name,
                                   std::chrono::milliseconds timeout) {
  CmdResult r;
  r.exit_code = WaitBounded(pid, timeout);
  r.out = Slurp(dir_ + "/" + name + ".out");
  r.err = Slurp(dir_ + "/" + name + ".err");
  FailOnSanitizerReport(WRIT_BIN, pid, r.err);
  return r;
}

std::vector<nlohmann::json> WritdInstance::Events() const {
  std::vector<nlohmann::json> out;
  std::ifstream in(events_);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    n++;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      // The writer may be mid-line on the last line; anything earlier is a real defect.
      if (in.peek() != EOF) ADD_FAILURE() << events_ << ":" << n << ": not JSON: " << line;
      continue;
    }
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<nlohmann::json> WritdInstance::TaskEvents(const std::string& task_id) const {
  std::vector<nlohmann::json> out;
  for (auto& e : Events()) {
    if (e.contains("agent") && e["agent"].value("task_id", "") == task_id) out.push_back(e);
  }
  return out;
}

nlohmann::json WritdInstance::WaitForEvent(const std::function<bool(const nlohmann::json&)>& pred,
                                           std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    for (const auto& e : Events()) {
      if (pred(e)) return e;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return nlohmann::json();
}

std::string WritdInstance::log() const { return Slurp(dir_ + "/writd.err"); }

void SuiteWritd::Start(const WritdInstance::Options& o) {
  if (geteuid() != 0) return;
  w_ = std::make_unique<WritdInstance>();
  status_ = w_->Start(o);
}

void SuiteWritd::Stop() {
  if (!w_) return;
  if (w_->running()) {
    EXPECT_EQ(w_->Stop(), 0) << "writd did not exit 0 on SIGTERM\n" << w_->log();
  }
  w_.reset();
}

}  // namespace writ::testlib
