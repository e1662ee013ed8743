// A real writd for end-to-end tests: a temp dir with its own config (run dir, state dir, JSONL
// events file, policies dir, a cgroup subtree of its own), the binary started as a child, `writ`
// commands run against its socket with bounded time, and the JSONL read back with nlohmann-json.
// Stop() sends SIGTERM and reports the exit status; the destructor cleans everything (processes,
// cgroups, temp dir).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace writ::testlib {

struct CmdResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it timed out
  std::string out;
  std::string err;
};

// Runs argv with stdout/stderr captured; killed after timeout. A sanitizer report from the command
// (ASan/UBSan/LSan/TSan, see SanitizerReport) fails the calling test.
CmdResult RunCommand(const std::vector<std::string>& argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));

class WritdInstance {
 public:
  struct Options {
    std::string mode = "monitor";
    std::map<std::string, std::string> policies;  // file name -> YAML text
    std::vector<std::string> extra_args;
    std::string extra_config;  // YAML appended to the generated writd.yaml as is (e.g. `sinks:`,
                               // `credentials:`)
  };

  WritdInstance() = default;
  ~WritdInstance();
  WritdInstance(const WritdInstance&) = delete;
  WritdInstance& operator=(const WritdInstance&) = delete;

  // Starts writd and waits (bounded) until its control socket answers `writ status`.
  absl::Status Start(const Options& opts);
  // SIGTERM, then waits up to 10 s; returns the wait status decoded (exit code or 128+signal).
  int Stop();
  // SIGKILL (no clean shutdown: pins, state and the guardian are what a crash leaves), then restart
  // with the same directories and config.
  int Kill9();
  absl::Status Restart();
  bool running() const { return pid_ > 0; }

  // `writ --socket S ARGS...`
  CmdResult Writ(const std::vector<std::string>& args,
                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // Starts `writ --socket S ARGS...` in the background; output goes to files under dir().
  pid_t WritAsync(const std::vector<std::string>& args, const std::string& name);
  // Waits for a background writ (bounded); returns its result with the captured output.
  CmdResult WaitAsync(pid_t pid, const std::string& name,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Every JSONL event so far (malformed lines fail the test via ADD_FAILURE).
  std::vector<nlohmann::json> Events() const;
  // Events of one task, in file order.
  std::vector<nlohmann::json> TaskEvents(const std::string& task_id) const;
  // Polls the JSONL until pred matches an event; returns it (null json on timeout).
  nlohmann::json WaitForEvent(const std::function<bool(const nlohmann::json&)>& pred,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  const std::string& cgroup_root() const { return cgroup_root_; }
  const std::string& policies_dir() const { return policies_dir_; }
  const std::string& events_path() const { return events_; }
  std::string log() const;  // writd's stderr

 private:
  absl::Status Launch();
  // Fails the test (once per writd process) if writd `pid` left a sanitizer report.
  void CheckSanitizer(pid_t pid);
  std::vector<std::string> argv_;
  std::string dir_, socket_, events_, policies_dir_, subtree_, cgroup_root_;
  pid_t pid_ = -1;
  size_t log_checked_ = 0;  // bytes of writd.err already looked at by CheckSanitizer
};

// The unprivileged users tests run agents as: WRIT_TEST_AGENT_USER is in the control group `writ`
// (like an operator who launches agents as themselves), WRIT_TEST_OTHER_USER is not.
#define WRIT_TEST_AGENT_USER "writ-agent"
#define WRIT_TEST_OTHER_USER "writ-other"
absl::Status EnsureTestUsers();
// A new directory under /tmp (realpath'd) that belongs to WRIT_TEST_AGENT_USER: where an agent of a
// test writes. "" on failure.
std::string MakeAgentDir(const std::string& prefix);
uid_t TestAgentUid();
gid_t TestAgentGid();  // its primary group
// `writ run ARGS` without --user or --allow-root runs the agent as WRIT_TEST_AGENT_USER: tests run
// agents unprivileged, as users do (docs/threat-model.md). Other commands are returned as they are.
std::vector<std::string> AsTestAgent(const std::vector<std::string>& args);

// Sanitizer builds (scripts/test.sh asan-e2e): the report a sanitized process `pid` left, or "".
// Looked for in `stderr_text` (a report printed to stderr) and, when ASAN_OPTIONS, UBSAN_OPTIONS or
// TSAN_OPTIONS name a log_path, in the file <log_path>.<pid> the runtime writes instead.
std::string SanitizerReport(pid_t pid, const std::string& stderr_text);

// The argv that starts `writ` as a command inside a task. A task's seccomp filter refuses
// PTRACE_ATTACH (self-protection), and LeakSanitizer needs it to stop the world at exit: in a
// sanitizer build that writ runs with leak detection off (ASan and UBSan still check it); elsewhere
// it is a no-op.
std::vector<std::string> WritInTaskArgv();

// A file's whole contents, or "" when it cannot be read.
std::string Slurp(const std::string& path);

// "writ: task t-xxxx" from writ run's stderr, or "".
std::string TaskIdFrom(const std::string& err);

// `writ status` lists each rung as "  NAME  active|why not" (Loader::Rungs): true when the line
// starting with `prefix` says active.
bool RungActive(const std::string& status, const std::string& prefix);

// One writd shared by every test of a suite: Start in SetUpTestSuite (it starts nothing unless
// root), Stop in TearDownTestSuite (it expects writd to exit 0 on SIGTERM), and each test's SetUp
// begins with WRIT_SUITE_WRITD_READY(writd_): skipped with the reason when not root, failed when
// the start failed. Tests use it as a WritdInstance* (writd_->Writ(...), *writd_).
class SuiteWritd {
 public:
  void Start(const WritdInstance::Options& o);
  void Stop();
  const absl::Status& status() const { return status_; }
  WritdInstance* operator->() const { return w_.get(); }
  WritdInstance& operator*() const { return *w_; }

 private:
  std::unique_ptr<WritdInstance> w_;
  absl::Status status_ = absl::FailedPreconditionError("writd was not started (not root)");
};

#define WRIT_SUITE_WRITD_READY(suite_writd)                                     \
  do {                                                                          \
    if (geteuid() != 0) GTEST_SKIP() << "needs root: writd loads BPF programs"; \
    ASSERT_TRUE((suite_writd).status().ok()) << (suite_writd).status();         \
  } while (0)

}  // namespace writ::testlib
