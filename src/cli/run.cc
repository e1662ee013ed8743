#include "cli/run.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "actions/self_filter.h"
#include "api/client.h"
#include "api/framing.h"
#include "cli/cli_util.h"
#include "cli/mcp_gateway.h"
#include "cli/run_as.h"

namespace writ::cli {
namespace {

using writ::v1::Request;

// PATH lookup as execvp would do it, so a missing command is reported before any task exists.
std::string ResolveCommand(const std::string& cmd) {
  auto ok = [](const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
  };
  if (cmd.find('/') != std::string::npos) return ok(cmd) ? cmd : "";
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string p = absl::StrCat(dir.empty() ? "." : dir, "/", cmd);
    if (ok(p)) return p;
  }
  return "";
}

pid_t g_child = 0;
void Forward(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

}  // namespace

int CmdRun(const std::string& socket, int argc, char** argv) {
  Args a =
      Parse(argc, argv, 2,
            {"agent", "principal", "intent", "param", "ttl", "parent", "user", "mcp-max-message"},
            {"no-seccomp", "allow-root", "mcp"}, /*stop_at_positional=*/true);
  const bool seccomp = !a.Has("no-seccomp");
  if (!a.error.empty()) return Fail(kExitUsage, a.error);
  // --mcp: the launcher relays and judges the MCP stdio (cli/mcp_gateway.h). Only from outside
  // every task: writd believes tool-call reports only from there.
  const bool mcp = a.Has("mcp");
  writ::cli::GatewayOptions gw_opts;
  if (mcp && !a.Get("parent").empty()) {
    return Fail(kExitUsage,
                "run: --mcp is for a launcher outside tasks, not a sub-agent's (--parent)");
  }
  if (a.Has("mcp-max-message") &&
      !absl::SimpleAtoi(a.Get("mcp-max-message"), &gw_opts.max_message)) {
    return Fail(kExitUsage, "run: --mcp-max-message: expected a number of bytes");
  }
  int mcp_in[2] = {-1, -1}, mcp_out[2] = {-1, -1};
  if (mcp && (pipe2(mcp_in, O_CLOEXEC) != 0 || pipe2(mcp_out, O_CLOEXEC) != 0)) {
    return Fail(1, "run: pipe failed");
  }
  auto run_as = writ::cli::ChooseRunAs(a.Get("user"), a.Has("allow-root"));
  if (!run_as.ok()) {
    return Fail(absl::IsPermissionDenied(run_as.status()) ? 1 : kExitUsage,
                absl::StrCat("run: ", run_as.status().message()));
  }
  if (!a.Has("agent")) return Fail(kExitUsage, "run: --agent SPIFFE_ID is required");
  if (a.rest.empty()) return Fail(kExitUsage, "run: no command given (writ run --agent ID -- CMD)");
  std::string exe = ResolveCommand(a.rest[0]);
  if (exe.empty()) return Fail(127, absl::StrCat("run: command not found: ", a.rest[0]));

  Request req;
  auto* ct = req.mutable_create_task();
  ct->set_spiffe_id(a.Get("agent"));
  ct->set_principal(a.Get("principal"));
  ct->set_intent(a.Get("intent"));
  ct->set_ttl(a.Get("ttl"));
  ct->set_parent_task(a.Get("parent"));
  for (const std::string& kv : a.opts["param"]) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(kExitUsage, absl::StrCat("run: --param ", kv, ": expected KEY=VALUE"));
    }
    (*ct->mutable_params())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& s : a.rest) ct->add_command(s);
  ct->set_run_uid(run_as->uid);
  ct->set_allow_root(run_as->root);

  auto fd = Dial(socket);
  if (!fd.ok()) return Fail(1, std::string(fd.status().message()));
  auto resp = writ::api::Call(fd->get(), req);
  if (!resp.ok()) {
    // Refusals of what the user asked for (bad identity, unknown intent, bad parameter): usage
    // errors.
    int code = absl::IsInvalidArgument(resp.status()) || absl::IsNotFound(resp.status()) ||
                       absl::IsPermissionDenied(resp.status())
                   ? kExitUsage
                   : 1;
    return Fail(code, absl::StrCat("run: ", resp.status().message()));
  }
  const std::string task_id = resp->create_task().task_id();
  // The intent's provider credentials land here (files 0400, ours) before the command runs.
  const std::string credentials_dir = resp->create_task().credentials_dir();
  const std::string workload_socket = resp->create_task().workload_socket();
  fprintf(stderr, "writ: task %s\n", task_id.c_str());

  // writd places the child in the task cgroup before it may exec (it waits on `go`): its first
  // instruction as CMD is already attributed, and no agent ever needs write access to a
  // cgroup.procs.
  int sync[2], go[2];
  if (pipe2(sync, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return Fail(1, "pipe failed");
  pid_t pid = fork();
  if (pid < 0) return Fail(1, absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    close(sync[0]);
    close(go[1]);
    // 'g' (install the filter) or 'k' (writd's BPF-LSM programs guard it: no filter) and the
    // encoded SelfFilterSpec, then EOF. EOF alone = the launcher gave up: never run outside the
    // task.
    std::string msg;
    char b[512];
    for (ssize_t r; (r = read(go[0], b, sizeof(b))) != 0;) {
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) _exit(126);
      msg.append(b, r);
    }
    if (msg.empty()) _exit(126);
    writ::actions::SelfFilterSpec spec;
    if ((msg[0] != 'g' && msg[0] != 'k') ||
        !writ::actions::DecodeSelfFilterSpec(absl::string_view(msg).substr(1), &spec)) {
      std::string err =
          absl::StrCat("malformed start message from the launcher (", msg.size(), " bytes)");
      (void)!write(sync[1], err.data(), err.size());
      _exit(126);
    }
    if (mcp && (dup2(mcp_in[0], STDIN_FILENO) < 0 || dup2(mcp_out[1], STDOUT_FILENO) < 0))
      _exit(126);
    if (!credentials_dir.empty()) setenv("WRIT_CREDENTIALS_DIR", credentials_dir.c_str(), 1);
    // The Workload API of the writd that placed it: what SPIFFE libraries (and `writ svid`) read.
    if (!workload_socket.empty()) setenv("SPIFFE_ENDPOINT_SOCKET", workload_socket.c_str(), 1);
    setenv("WRIT_TASK_ID", task_id.c_str(), 1);
    if (absl::Status st = writ::cli::DropPrivileges(*run_as); !st.ok()) {
      std::string err = absl::StrCat("give up privileges: ", st.message());
      (void)!write(sync[1], err.data(), err.size());
      _exit(126);
    }
    if (seccomp && msg[0] == 'g') {
      // Self-protection: installed last, so nothing of the launcher's own needs is refused.
      absl::Status st = writ::actions::InstallSelfFilter(spec);
      if (!st.ok()) {
        std::string err = absl::StrCat(st.message(), " (writ run --no-seccomp runs without it)");
        (void)!write(sync[1], err.data(), err.size());
        _exit(126);
      }
    }
    std::vector<char*> cargv;
    for (auto& s : a.rest) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    execv(exe.c_str(), cargv.data());
    std::string err = absl::StrCat("exec ", exe, ": ", strerror(errno));
    (void)!write(sync[1], err.data(), err.size());
    _exit(127);
  }
  close(sync[1]);
  close(go[0]);
  if (mcp) {
    close(mcp_in[0]);
    close(mcp_out[1]);
  }
  Request place;
  auto* ps = place.mutable_task_started();
  ps->set_task_id(task_id);
  ps->set_pid(pid);
  ps->set_started(true);
  ps->set_place(true);
  auto placed = writ::api::Call(fd->get(), place);
  if (!placed.ok()) {
    close(go[1]);  // the child exits without running CMD
    waitpid(pid, nullptr, 0);
    Request abort;
    abort.mutable_task_started()->set_task_id(task_id);
    abort.mutable_task_started()->set_error(std::string(placed.status().message()));
    (void)writ::api::Call(fd->get(), abort);
    return Fail(1, absl::StrCat("run: ", placed.status().message()));
  }
  // The child reads to EOF and refuses a short message (DecodeSelfFilterSpec), so a failed write
  // fails safe. A child that is already gone (its task killed meanwhile) gives EPIPE, not a
  // launcher dead of SIGPIPE without a word: its status is reported below. Only here, after the
  // fork: an ignored signal would survive the child's exec.
  signal(SIGPIPE, SIG_IGN);
  writ::actions::SelfFilterSpec protect;
  protect.pids.assign(placed->placed().protected_pids().begin(),
                      placed->placed().protected_pids().end());
  protect.groups.assign(placed->placed().protected_groups().begin(),
                        placed->placed().protected_groups().end());
  const std::string go_msg = (placed->placed().kernel_guards_self() ? "k" : "g") +
                             writ::actions::EncodeSelfFilterSpec(protect);
  for (size_t off = 0; off < go_msg.size();) {
    ssize_t w = write(go[1], go_msg.data() + off, go_msg.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += w;
  }
  close(go[1]);
  char buf[512];
  ssize_t n = read(sync[0], buf, sizeof(buf));  // EOF (0) = exec succeeded (CLOEXEC closed it)
  close(sync[0]);
  if (n > 0) {
    Request failed;
    failed.mutable_task_started()->set_task_id(task_id);
    failed.mutable_task_started()->set_pid(pid);
    failed.mutable_task_started()->set_error(std::string(buf, n));
    (void)writ::api::Call(fd->get(), failed);
  }
  if (!mcp) fd->Reset();  // the gateway reports the task's tool calls on this connection

  g_child = pid;
  struct sigaction sa = {};
  sa.sa_handler = Forward;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  int status = 0;
  if (mcp && n <= 0) {
    gw_opts.task_id = task_id;
    writ::cli::ControlJudge judge(fd->get());
    writ::cli::McpGateway gw(gw_opts, judge);
    status = writ::cli::RunMcpGateway(gw, mcp_in[1], mcp_out[0], pid);
  } else {
    while (waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) return Fail(1, absl::StrCat("waitpid: ", strerror(errno)));
    }
  }
  if (n > 0) return Fail(WEXITSTATUS(status), std::string(buf, n));
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace writ::cli
