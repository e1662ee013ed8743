// Workload API interop: a stock Node gRPC client (pinned @grpc/grpc-js) run as a child process,
// once inside a cgroup the test registers as a task (gets and validates an SVID) and once outside
// (refused). Needs root (to create a cgroup) and npm (to install the client); skips with the reason
// otherwise.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "creds/workload_api.h"
#include "gtest/gtest.h"

#ifndef WRIT_SOURCE_DIR
#error "WRIT_SOURCE_DIR must be defined"
#endif
#ifndef WRIT_CREDS_NODE_DIR
#error "WRIT_CREDS_NODE_DIR must be defined"
#endif

namespace writ::creds {
namespace {

std::string Cgroup2Mount() {
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, type, rest;
  while (in >> dev >> mnt >> type && std::getline(in, rest)) {
    if (type == "cgroup2") return mnt;
  }
  return "";
}

struct RunResult {
  int exit_code = -1;
  std::string out;
};

// Runs argv with stdout captured; if `cgroup_procs` is set the child moves itself there before
// exec. Bounded: killed after `timeout`.
RunResult RunChild(const std::vector<std::string>& argv, const std::string& cgroup_procs,
                   absl::Duration timeout, const std::string& cwd = "") {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    if (!cgroup_procs.empty()) {
      int fd = open(cgroup_procs.c_str(), O_WRONLY);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(97);
      close(fd);
    }
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(98);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
  RunResult r;
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  bool done = false;
  while (!done) {
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) r.out.append(buf, n);
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      done = true;
    } else if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      done = true;
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) r.out.append(buf, n);
  close(pipefd[0]);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TEST(WorkloadApiInterop, NodeClientInTaskCgroupGetsSvidOutsideIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
  std::string mount = Cgroup2Mount();
  // writ needs cgroup2 anyway: its absence is a broken host, not a reason to skip.
  ASSERT_FALSE(mount.empty()) << "no cgroup2 mount in /proc/mounts";
  // Install the pinned client libraries once into the build dir (never into the source tree).
  std::string node_dir = WRIT_CREDS_NODE_DIR;
  std::filesystem::create_directories(node_dir);
  // The lockfile too: `npm install` then installs the locked versions (creds_rp_e2e_test shares
  // this directory and installs with `npm ci`).
  for (const char* f : {"package.json", "package-lock.json"}) {
    std::filesystem::copy_file(std::string(WRIT_SOURCE_DIR) + "/tests/e2e/creds/" + f,
                               node_dir + "/" + f,
                               std::filesystem::copy_options::overwrite_existing);
  }
  if (!std::filesystem::exists(node_dir + "/node_modules/@grpc/grpc-js/package.json")) {
    RunResult npm =
        RunChild({"npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", node_dir},
                 "", absl::Minutes(4), node_dir);
    if (npm.exit_code != 0)
      GTEST_SKIP() << "npm install failed (registry unreachable?), exit " << npm.exit_code;
  }

  char tmpl[] = "/tmp/writ-wle2e-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string rel = "/writ-creds-e2e-" + std::to_string(getpid());
  std::string cg = mount + rel;
  ASSERT_EQ(mkdir(cg.c_str(), 0755), 0) << "mkdir " << cg << ": " << strerror(errno);

  KeyStoreOptions ko;
  ko.state_dir = dir;
  auto keys = std::move(*KeyStore::Open(ko));
  auto revs = std::move(*RevocationStore::Open(dir + "/revoked.db"));
  Issuer issuer({"https://writ.local"}, keys.get(), revs.get());
  std::atomic<int> task_lookups{0};
  WorkloadApiOptions o;
  o.socket_path = dir + "/workload.sock";
  o.trust_domain = "example.org";
  o.lookup = [&](pid_t, uint64_t, const std::string& cgroup) -> std::optional<TaskClaims> {
    if (cgroup != rel) return std::nullopt;
    task_lookups++;
    return TaskClaims{"task-e2e",
                      "spiffe://example.org/agent/node",
                      {"user:alice@example.org"},
                      "interop",
                      absl::Now() + absl::Minutes(10)};
  };
  auto server = WorkloadApiServer::Start(o, &issuer, keys.get());
  ASSERT_TRUE(server.ok()) << server.status();

  std::vector<std::string> argv = {
      "env",
      "NODE_PATH=" + node_dir + "/node_modules",
      "node",
      std::string(WRIT_SOURCE_DIR) + "/tests/e2e/creds_workload_client.js",
      o.socket_path,
      std::string(WRIT_SOURCE_DIR) + "/include/writ/v1/workload.proto",
      "https://db.example.org"};
  RunResult in = RunChild(argv, cg + "/cgroup.procs", absl::Seconds(30));
  RunResult out = RunChild(argv, "", absl::Seconds(30));
  (*server)->Stop();
  rmdir(cg.c_str());
  std::filesystem::remove_all(dir);

  ASSERT_EQ(in.exit_code, 0) << in.out;
  auto j = nlohmann::json::parse(in.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << in.out;
  EXPECT_EQ(j["spiffe_id"], "spiffe://example.org/agent/node");
  EXPECT_EQ(j["validated_spiffe_id"], "spiffe://example.org/agent/node");
  EXPECT_EQ(j["hint"], "task-e2e");
  EXPECT_EQ(j["claims"]["writ_task"], "task-e2e");
  EXPECT_EQ(j["claims"]["aud"], nlohmann::json({"https://db.example.org"}));
  EXPECT_EQ(j["claims"]["act"]["sub"], "user:alice@example.org");
  EXPECT_GE(task_lookups.load(), 1);

  ASSERT_EQ(out.exit_code, 2) << out.out;
  auto k = nlohmann::json::parse(out.out, nullptr, false);
  ASSERT_TRUE(k.is_object()) << out.out;
  EXPECT_EQ(k["code"], 7) << out.out;  // PERMISSION_DENIED
}

}  // namespace
}  // namespace writ::creds
