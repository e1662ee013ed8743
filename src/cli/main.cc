// writ: the command-line client of writd. `writ help` lists the commands.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "actions/self_filter.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "api/client.h"
#include "api/framing.h"
#include "cli/mcp_gateway.h"
#include "cli/run_as.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "writ/v1/workload.grpc.pb.h"
#include "intent/intent.h"
#include "journal/journal.h"
#include "sinks/json_encoder.h"
#include "sinks/ocsf_encoder.h"
#include "util/terminal_text.h"
#include "util/util.h"

namespace {

using writ::v1::Request;
using writ::v1::Response;

constexpr int kExitUsage = 2;

int Fail(int code, const std::string& msg) {
  fprintf(stderr, "writ: %s\n", msg.c_str());
  return code;
}

void Usage(FILE* f) {
  fprintf(f,
          "usage: writ [--socket PATH] COMMAND ...\n"
          "  run --agent SPIFFE_ID [--principal P] [--intent NAME] [--param K=V]... [--ttl D]\n"
          "      [--parent TASK] [--user NAME | --allow-root] [--no-seccomp]\n"
          "      [--mcp [--mcp-max-message BYTES]] -- CMD [ARGS...]\n"
          "      run CMD as a task, as an unprivileged user: the invoking user (behind sudo: the real\n"
          "      user), or --user NAME; as root only with --allow-root and an intent that allows it\n"
          "      (--no-seccomp: without the self-protection filter; only the BPF fallback applies)\n"
          "      (--mcp: CMD is a stdio MCP server; writ relays and judges its JSON-RPC, intent tools:)\n"
          "  status                                  hooks, enforcement, counters, tasks\n"
          "  svid --audience AUD [--workload-socket PATH]   (inside a task) print a JWT-SVID\n"
          "  tail [--violations] [--agent ID] [--task ID] [--format text|json|ocsf]\n"
          "  approvals | approve ID [--scope once|task] [--reason T] | deny ID [--reason T]\n"
          "  kill TASK | freeze TASK | thaw TASK | revoke TASK\n"
          "  policy check [DIR|FILE...] | policy test [DIR] | policy reload\n"
          "  policy explain --intent NAME [--policies DIR] [--param K=V]... --event JSON\n"
          "  policy suggest --from EVENTS.jsonl --task ID [--name NAME]\n"
          "  audit verify [PATH]                     check the hash-chained journal\n"
          "                                          (default /var/lib/writ/journal.jsonl)\n");
}

// Minimal option scanner: --flag VALUE, --flag=VALUE, boolean --flag; stops at "--".
struct Args {
  std::map<std::string, std::vector<std::string>> opts;
  std::vector<std::string> positional;
  std::vector<std::string> rest;  // after "--"
  std::string error;

  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = opts.find(k);
    return it == opts.end() || it->second.empty() ? def : it->second.back();
  }
  bool Has(const std::string& k) const { return opts.count(k) > 0; }
};

Args Parse(int argc, char** argv, int start, const std::vector<std::string>& with_value,
           const std::vector<std::string>& booleans, bool stop_at_positional = false) {
  Args a;
  for (int i = start; i < argc; i++) {
    std::string s = argv[i];
    if (s == "--") {
      for (int j = i + 1; j < argc; j++) a.rest.push_back(argv[j]);
      break;
    }
    if (absl::StartsWith(s, "--")) {
      std::string name = s.substr(2), value;
      bool has_eq = false;
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_eq = true;
      }
      if (std::find(booleans.begin(), booleans.end(), name) != booleans.end()) {
        a.opts[name].push_back("1");
        continue;
      }
      if (std::find(with_value.begin(), with_value.end(), name) == with_value.end()) {
        a.error = absl::StrCat("unknown flag --", name);
        return a;
      }
      if (!has_eq) {
        if (i + 1 >= argc) {
          a.error = absl::StrCat("--", name, " needs a value");
          return a;
        }
        value = argv[++i];
      }
      a.opts[name].push_back(value);
      continue;
    }
    if (stop_at_positional) {
      for (int j = i; j < argc; j++) a.rest.push_back(argv[j]);
      break;
    }
    a.positional.push_back(s);
  }
  return a;
}

absl::StatusOr<writ::Fd> Dial(const std::string& socket) {
  return writ::api::Connect(writ::api::SocketPath(socket));
}

absl::StatusOr<Response> Call(const std::string& socket, const Request& req) {
  auto fd = Dial(socket);
  if (!fd.ok()) return fd.status();
  return writ::api::Call(fd->get(), req);
}

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

int CmdRun(const std::string& socket, int argc, char** argv) {
  Args a = Parse(argc, argv, 2,
                 {"agent", "principal", "intent", "param", "ttl", "parent", "user", "mcp-max-message"},
                 {"no-seccomp", "allow-root", "mcp"}, /*stop_at_positional=*/true);
  const bool seccomp = !a.Has("no-seccomp");
  if (!a.error.empty()) return Fail(kExitUsage, a.error);
  // --mcp: the launcher relays and judges the MCP stdio (cli/mcp_gateway.h). Only from outside every
  // task: writd believes tool-call reports only from there.
  const bool mcp = a.Has("mcp");
  writ::cli::GatewayOptions gw_opts;
  if (mcp && !a.Get("parent").empty()) {
    return Fail(kExitUsage, "run: --mcp is for a launcher outside tasks, not a sub-agent's (--parent)");
  }
  if (a.Has("mcp-max-message") && !absl::SimpleAtoi(a.Get("mcp-max-message"), &gw_opts.max_message)) {
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
    // Refusals of what the user asked for (bad identity, unknown intent, bad parameter): usage errors.
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
  // instruction as CMD is already attributed, and no agent ever needs write access to a cgroup.procs.
  int sync[2], go[2];
  if (pipe2(sync, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) return Fail(1, "pipe failed");
  pid_t pid = fork();
  if (pid < 0) return Fail(1, absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    close(sync[0]);
    close(go[1]);
    // 'g' and the encoded SelfFilterSpec, then EOF. EOF alone = the launcher gave up: never run
    // outside the task.
    std::string msg;
    char b[512];
    for (ssize_t r; (r = read(go[0], b, sizeof(b))) != 0;) {
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) _exit(126);
      msg.append(b, r);
    }
    if (msg.empty()) _exit(126);
    writ::actions::SelfFilterSpec spec;
    if (msg[0] != 'g' || !writ::actions::DecodeSelfFilterSpec(absl::string_view(msg).substr(1), &spec)) {
      std::string err = absl::StrCat("malformed start message from the launcher (", msg.size(), " bytes)");
      (void)!write(sync[1], err.data(), err.size());
      _exit(126);
    }
    if (mcp && (dup2(mcp_in[0], STDIN_FILENO) < 0 || dup2(mcp_out[1], STDOUT_FILENO) < 0)) _exit(126);
    if (!credentials_dir.empty()) setenv("WRIT_CREDENTIALS_DIR", credentials_dir.c_str(), 1);
    // The Workload API of the writd that placed it: what SPIFFE libraries (and `writ svid`) read.
    if (!workload_socket.empty()) setenv("SPIFFE_ENDPOINT_SOCKET", workload_socket.c_str(), 1);
    setenv("WRIT_TASK_ID", task_id.c_str(), 1);
    if (absl::Status st = writ::cli::DropPrivileges(*run_as); !st.ok()) {
      std::string err = absl::StrCat("give up privileges: ", st.message());
      (void)!write(sync[1], err.data(), err.size());
      _exit(126);
    }
    if (seccomp) {
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
  // The child reads to EOF and refuses a short message (DecodeSelfFilterSpec), so a failed write fails
  // safe.
  // A child that is already gone (its task killed meanwhile) gives EPIPE, not a launcher dead of
  // SIGPIPE without a word: its status is reported below. Only here, after the fork: an ignored
  // signal would survive the child's exec.
  signal(SIGPIPE, SIG_IGN);
  writ::actions::SelfFilterSpec protect;
  protect.pids.assign(placed->placed().protected_pids().begin(), placed->placed().protected_pids().end());
  protect.groups.assign(placed->placed().protected_groups().begin(),
                        placed->placed().protected_groups().end());
  const std::string go_msg = "g" + writ::actions::EncodeSelfFilterSpec(protect);
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

int CmdStatus(const std::string& socket) {
  Request req;
  req.mutable_status();
  auto resp = Call(socket, req);
  if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
  const auto& s = resp->status();
  printf("writd %s, mode %s, %u intents loaded\n", s.version().c_str(), s.mode().c_str(),
         s.intents_loaded());
  if (!s.policy_error().empty()) printf("policy reload FAILED (old policy in force):\n%s\n", s.policy_error().c_str());
  printf("hooks:\n");
  for (const auto& h : s.hooks()) {
    printf("  %-45s %s\n", h.name().c_str(), h.active() ? "active" : h.detail().c_str());
  }
  printf("enforcement:\n");
  for (const auto& h : s.enforcement()) {
    printf("  %-60s %s\n", h.name().c_str(), h.active() ? "active" : h.detail().c_str());
  }
  printf("events by kind:");
  for (const auto& [k, v] : std::map<std::string, uint64_t>(s.events_by_kind().begin(), s.events_by_kind().end())) {
    printf(" %s=%lu", k.c_str(), static_cast<unsigned long>(v));
  }
  printf("\ndrops by kind:");
  for (const auto& [k, v] : std::map<std::string, uint64_t>(s.drops_by_kind().begin(), s.drops_by_kind().end())) {
    printf(" %s=%lu", k.c_str(), static_cast<unsigned long>(v));
  }
  printf("\nuserspace drops: %lu\n", static_cast<unsigned long>(s.userspace_drops()));
  printf("counters:");
  for (const auto& [k, v] : std::map<std::string, uint64_t>(s.counters().begin(), s.counters().end())) {
    printf(" %s=%lu", k.c_str(), static_cast<unsigned long>(v));
  }
  printf("\napprovals pending: %u\ntasks: %d\n", s.approvals_pending(), s.tasks_size());
  for (const auto& t : s.tasks()) {
    printf("  %s %s %s intent=%s mode=%s processes=%u%s%s\n", t.task_id().c_str(),
           t.state().c_str(), t.spiffe_id().c_str(), t.intent().empty() ? "-" : t.intent().c_str(),
           t.mode().c_str(), t.processes(), t.deadline().empty() ? "" : " deadline=",
           t.deadline().c_str());
  }
  return 0;
}

// One event as a line for a person. Every string from the event is passed through TerminalSafe: a
// task chooses its file names and argv, and raw they could clear the screen or forge lines.
std::string TextLine(const writ::v1::Event& ev, bool color) {
  const char* red = color ? "\033[31m" : "";
  const char* yellow = color ? "\033[33m" : "";
  const char* dim = color ? "\033[2m" : "";
  const char* reset = color ? "\033[0m" : "";
  using writ::TerminalSafe;
  auto safe_join = [](const auto& list, absl::string_view sep) {
    std::string out;
    bool first = true;
    for (const auto& s : list) {
      if (!first) out.append(sep.data(), sep.size());
      first = false;
      writ::AppendTerminalSafe(s, &out);
    }
    return out;
  };
  std::string target;
  if (ev.kind() == "exec") {
    target =
        absl::StrCat(TerminalSafe(ev.process().exe()), " ", safe_join(ev.process().args(), " "));
  } else if (ev.kind() == "open") {
    target = absl::StrCat(TerminalSafe(ev.file().path()), " [", safe_join(ev.file().flags(), ","),
                          "]", ev.file().result() ? absl::StrCat(" = ", ev.file().result()) : "");
  } else if (ev.kind() == "connect") {
    target = absl::StrCat(TerminalSafe(ev.network().dst_ip()), ":", ev.network().dst_port(),
                          ev.network().result() ? absl::StrCat(" = ", ev.network().result()) : "");
  } else if (ev.kind() == "self") {
    const auto& sc = ev.syscall();
    target = absl::StrCat(
        TerminalSafe(sc.name()),
        sc.target().empty() ? "" : absl::StrCat(" -> ", TerminalSafe(sc.target())),
        sc.target_pid() ? absl::StrCat(" (pid ", sc.target_pid(), ")") : "", " = ", sc.result());
  } else if (ev.kind() == "action") {
    const auto& a = ev.action();
    target = absl::StrCat(TerminalSafe(a.type()), " ", TerminalSafe(a.target()), " ",
                          TerminalSafe(a.result()), " (", a.latency_us(), " us) ",
                          TerminalSafe(a.reason()));
  } else if (ev.kind() == "task_end") {
    target = "reason=" + TerminalSafe(ev.task().reason());
  } else if (ev.kind() == "exit") {
    target = absl::StrCat("code=", ev.process().exit_code());
  } else if (ev.kind() == "approval_request") {
    target =
        absl::StrCat(TerminalSafe(ev.approval().id()), " ", TerminalSafe(ev.approval().action()));
  } else if (ev.kind() == "credential") {
    const auto& c = ev.credential();
    target = absl::StrCat(TerminalSafe(c.operation()), " ", TerminalSafe(c.type()), " ",
                          TerminalSafe(c.jti()));
  }
  const char* vc = ev.verdict() == "violation"        ? red
                   : ev.verdict() == "needs_approval" ? yellow
                                                      : "";
  std::string line =
      absl::StrCat(dim, TerminalSafe(ev.time()), reset, " ", TerminalSafe(ev.agent().spiffe_id()),
                   " ", TerminalSafe(ev.agent().task_id()), " pid=", ev.process().pid(), " ",
                   TerminalSafe(ev.kind()), " ", target);
  if (!ev.verdict().empty()) absl::StrAppend(&line, " ", vc, TerminalSafe(ev.verdict()), reset);
  if (!ev.outcome().empty()) absl::StrAppend(&line, " ", vc, TerminalSafe(ev.outcome()), reset);
  if (ev.has_finding()) {
    absl::StrAppend(&line, " ", vc, TerminalSafe(ev.finding().rule()), ": ",
                    TerminalSafe(ev.finding().reason()), " [",
                    safe_join(ev.finding().frameworks(), ","), "]", reset);
  }
  return line;
}

int CmdTail(const std::string& socket, int argc, char** argv) {
  Args a = Parse(argc, argv, 2, {"agent", "task", "format"}, {"violations"});
  if (!a.error.empty()) return Fail(kExitUsage, a.error);
  std::string format = a.Get("format", "text");
  if (format != "text" && format != "json" && format != "ocsf") {
    return Fail(kExitUsage, "tail: --format must be text, json or ocsf");
  }
  auto fd = Dial(socket);
  if (!fd.ok()) return Fail(1, std::string(fd.status().message()));
  Request req;
  req.mutable_tail()->set_violations_only(a.Has("violations"));
  req.mutable_tail()->set_agent(a.Get("agent"));
  req.mutable_tail()->set_task(a.Get("task"));
  auto first = writ::api::Call(fd->get(), req);
  if (!first.ok()) return Fail(1, std::string(first.status().message()));
  bool color = format == "text" && isatty(STDOUT_FILENO);
  signal(SIGPIPE, SIG_DFL);
  std::string line;
  for (;;) {
    Response r;
    absl::Status st = writ::api::ReadFrame(fd->get(), &r, absl::ZeroDuration());
    if (!st.ok()) return absl::IsNotFound(st) ? 0 : Fail(1, std::string(st.message()));
    if (!r.has_event()) continue;
    line.clear();
    if (format == "json") {
      writ::sinks::AppendJson(r.event(), &line);
    } else if (format == "ocsf") {
      writ::sinks::AppendOcsf(r.event(), &line);
    } else {
      line = TextLine(r.event(), color);
    }
    line.push_back('\n');
    fwrite(line.data(), 1, line.size(), stdout);
    fflush(stdout);
  }
}

int CmdApprovals(const std::string& socket) {
  Request req;
  req.mutable_list_approvals();
  auto resp = Call(socket, req);
  if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
  // The action is the task's argv or path: escaped like `writ tail`'s text (writ::TerminalSafe).
  for (const auto& ap : resp->approvals().approvals()) {
    printf("%s %s expires=%s rule=%s\n", writ::TerminalSafe(ap.id()).c_str(),
           writ::TerminalSafe(ap.action()).c_str(), writ::TerminalSafe(ap.expires()).c_str(),
           writ::TerminalSafe(ap.reason()).c_str());
  }
  return 0;
}

int CmdDecide(const std::string& socket, int argc, char** argv, bool approve) {
  Args a = Parse(argc, argv, 2, {"scope", "reason"}, {});
  if (!a.error.empty()) return Fail(kExitUsage, a.error);
  if (a.positional.size() != 1) return Fail(kExitUsage, "usage: writ approve|deny ID");
  std::string scope = a.Get("scope", "once");
  if (scope != "once" && scope != "task") return Fail(kExitUsage, "--scope must be once or task");
  Request req;
  auto* d = req.mutable_decide_approval();
  d->set_id(a.positional[0]);
  d->set_approve(approve);
  d->set_scope(scope);
  d->set_reason(a.Get("reason"));
  auto resp = Call(socket, req);
  if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
  return 0;
}

int CmdTaskAction(const std::string& socket, const std::string& cmd, int argc, char** argv) {
  Args a = Parse(argc, argv, 2, {"reason"}, {});
  if (!a.error.empty()) return Fail(kExitUsage, a.error);
  if (a.positional.size() != 1) return Fail(kExitUsage, absl::StrCat("usage: writ ", cmd, " TASK"));
  Request req;
  writ::v1::TaskRequest* tr = cmd == "kill"     ? req.mutable_kill_task()
                              : cmd == "freeze" ? req.mutable_freeze_task()
                              : cmd == "thaw"   ? req.mutable_thaw_task()
                                                : req.mutable_revoke_task();
  tr->set_task_id(a.positional[0]);
  tr->set_reason(a.Get("reason"));
  auto resp = Call(socket, req);
  if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
  return 0;
}

absl::StatusOr<writ::intent::PolicySet> LoadPolicies(const std::vector<std::string>& paths) {
  if (paths.size() == 1) {
    struct stat st;
    if (stat(paths[0].c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return writ::intent::LoadPolicyDir(paths[0]);
    }
  }
  return writ::intent::LoadPolicyFiles(paths);
}

std::string DefaultPolicyDir() {
  for (const char* d : {"policies", "/etc/writ/policies", "/usr/share/writ/policies"}) {
    struct stat st;
    if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return d;
  }
  return "policies";
}

int CmdPolicy(const std::string& socket, int argc, char** argv) {
  if (argc < 3) {
    Usage(stderr);
    return kExitUsage;
  }
  std::string sub = argv[2];
  if (sub == "check" || sub == "test") {
    std::vector<std::string> paths;
    for (int i = 3; i < argc; i++) paths.push_back(argv[i]);
    if (paths.empty()) paths.push_back(DefaultPolicyDir());
    auto set = LoadPolicies(paths);
    if (!set.ok()) {
      fprintf(stderr, "%s\n", std::string(set.status().message()).c_str());
      return 1;
    }
    if (sub == "check") {
      // Warnings (dead or skippable rules) go to stderr like a compiler's; they fail nothing.
      const std::vector<std::string> warnings = writ::intent::PolicyWarnings(*set);
      for (const std::string& w : warnings) fprintf(stderr, "%s\n", w.c_str());
      printf("%zu intents OK", set->intents().size());
      if (!warnings.empty()) printf(", %zu warnings", warnings.size());
      printf("\n");
      return 0;
    }
    writ::intent::TestSummary sum = writ::intent::RunPolicyTests(*set, std::cout);
    std::cout.flush();
    return sum.failed > 0 ? 1 : 0;
  }
  if (sub == "reload") {
    Request req;
    req.mutable_reload_policy();
    auto resp = Call(socket, req);
    if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
    printf("%u intents loaded\n", resp->reload().intents());
    return 0;
  }
  if (sub == "explain") {
    Args a = Parse(argc, argv, 3, {"intent", "policies", "param", "event"}, {});
    if (!a.error.empty()) return Fail(kExitUsage, a.error);
    if (!a.Has("intent") || !a.Has("event")) {
      return Fail(kExitUsage, "policy explain needs --intent NAME and --event JSON");
    }
    auto set = writ::intent::LoadPolicyDir(a.Get("policies", DefaultPolicyDir()));
    if (!set.ok()) return Fail(1, std::string(set.status().message()));
    const writ::v1::Intent* in = set->Find(a.Get("intent"));
    if (!in) return Fail(kExitUsage, absl::StrCat("unknown intent ", a.Get("intent")));
    absl::flat_hash_map<std::string, std::string> params;
    for (const std::string& kv : a.opts["param"]) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos) return Fail(kExitUsage, "--param expects KEY=VALUE");
      params[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto ci = writ::intent::Compile(*in, params);
    if (!ci.ok()) return Fail(kExitUsage, std::string(ci.status().message()));
    writ::v1::Event ev;
    google::protobuf::util::JsonParseOptions jo;
    jo.ignore_unknown_fields = false;
    auto st = google::protobuf::util::JsonStringToMessage(a.Get("event"), &ev, jo);
    if (!st.ok()) return Fail(kExitUsage, absl::StrCat("--event: ", st.ToString()));
    writ::intent::EvalContext ctx;
    ctx.now = absl::Now();
    ctx.live_processes = 1;
    printf("%s\n", writ::intent::Explain(**ci, ev, ctx).c_str());
    return 0;
  }
  if (sub == "suggest") {
    Args a = Parse(argc, argv, 3, {"from", "task", "name"}, {});
    if (!a.error.empty()) return Fail(kExitUsage, a.error);
    if (!a.Has("from") || !a.Has("task")) {
      return Fail(kExitUsage, "policy suggest needs --from EVENTS.jsonl and --task ID");
    }
    std::ifstream in(a.Get("from"));
    if (!in) return Fail(1, absl::StrCat("cannot read ", a.Get("from")));
    std::vector<writ::v1::Event> events;
    std::string line;
    int lineno = 0;
    google::protobuf::util::JsonParseOptions jo;
    jo.ignore_unknown_fields = true;
    while (std::getline(in, line)) {
      lineno++;
      if (line.empty()) continue;
      writ::v1::Event ev;
      auto st = google::protobuf::util::JsonStringToMessage(line, &ev, jo);
      if (!st.ok()) {
        return Fail(1, absl::StrCat(a.Get("from"), ":", lineno, ": ", st.ToString()));
      }
      if (ev.agent().task_id() == a.Get("task")) events.push_back(std::move(ev));
    }
    if (events.empty()) return Fail(1, absl::StrCat("no events of task ", a.Get("task"), " in ", a.Get("from")));
    printf("%s", writ::intent::SuggestIntent(a.Get("name", "suggested"), events, a.Get("task")).c_str());
    return 0;
  }
  return Fail(kExitUsage, absl::StrCat("unknown policy command ", sub));
}

// Fetches a JWT-SVID from writd's SPIFFE Workload API, the same way any SPIFFE client would: the caller
// is attested by the socket's peer credentials, so only a task's own processes get its identity.
int CmdSvid(int argc, char** argv) {
  Args a = Parse(argc, argv, 2, {"audience", "workload-socket"}, {});
  if (!a.error.empty()) return Fail(kExitUsage, a.error);
  if (!a.Has("audience")) return Fail(kExitUsage, "svid: --audience AUD is required");
  std::string path = a.Get("workload-socket");
  if (path.empty()) {
    const char* env = getenv("SPIFFE_ENDPOINT_SOCKET");
    path = env && *env ? env : "unix:/run/writ/workload.sock";
  }
  if (!absl::StartsWith(path, "unix:")) path = "unix:" + path;
  auto channel = grpc::CreateChannel(path, grpc::InsecureChannelCredentials());
  auto stub = SpiffeWorkloadAPI::SpiffeWorkloadAPI::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("workload.spiffe.io", "true");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  SpiffeWorkloadAPI::JWTSVIDRequest req;
  for (const std::string& aud : a.opts["audience"]) req.add_audience(aud);
  SpiffeWorkloadAPI::JWTSVIDResponse resp;
  grpc::Status st = stub->FetchJWTSVID(&ctx, req, &resp);
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      return Fail(1, "svid: this process is not part of a task (run it under `writ run`)");
    }
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      return Fail(1, absl::StrCat("svid: no Workload API at ", path,
                                  " (is writd running? set SPIFFE_ENDPOINT_SOCKET)"));
    }
    return Fail(1, absl::StrCat("svid: ", st.error_message()));
  }
  if (resp.svids_size() == 0) return Fail(1, "svid: writd returned no SVID");
  printf("%s\n", resp.svids(0).svid().c_str());
  return 0;
}

// writ audit verify [PATH]: exit 0 "OK: N records", 1 "TAMPERED: line L: reason", 2 unreadable.
// Reads the file directly (no daemon needed): an auditor can check a copied journal anywhere.
int CmdAudit(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) != "verify" || argc > 4) {
    return Fail(kExitUsage, "usage: writ audit verify [PATH]");
  }
  std::string path = argc == 4 ? argv[3] : "/var/lib/writ/journal.jsonl";
  auto r = writ::journal::VerifyJournal(path);
  if (!r.ok()) return Fail(kExitUsage, absl::StrCat("audit verify: ", r.status().message()));
  if (r->ok) {
    printf("OK: %llu records\n", static_cast<unsigned long long>(r->records));
    return 0;
  }
  printf("TAMPERED: line %llu: %s\n", static_cast<unsigned long long>(r->line), r->reason.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Global --socket before the command.
  std::string socket;
  int first = 1;
  while (first < argc && absl::StartsWith(argv[first], "--socket")) {
    std::string s = argv[first];
    if (s == "--socket" && first + 1 < argc) {
      socket = argv[first + 1];
      first += 2;
    } else if (absl::StartsWith(s, "--socket=")) {
      socket = s.substr(9);
      first += 1;
    } else {
      return Fail(kExitUsage, "--socket needs a path");
    }
  }
  if (first >= argc) {
    Usage(stderr);
    return kExitUsage;
  }
  // Shift so that argv[1] is the command.
  std::vector<char*> args;
  args.push_back(argv[0]);
  for (int i = first; i < argc; i++) args.push_back(argv[i]);
  int n = static_cast<int>(args.size());
  char** v = args.data();
  std::string cmd = v[1];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    Usage(stdout);
    return 0;
  }
  if (cmd == "run") return CmdRun(socket, n, v);
  if (cmd == "status") return CmdStatus(socket);
  if (cmd == "svid") return CmdSvid(n, v);
  if (cmd == "tail") return CmdTail(socket, n, v);
  if (cmd == "approvals") return CmdApprovals(socket);
  if (cmd == "approve") return CmdDecide(socket, n, v, true);
  if (cmd == "deny") return CmdDecide(socket, n, v, false);
  if (cmd == "kill" || cmd == "freeze" || cmd == "thaw" || cmd == "revoke") {
    return CmdTaskAction(socket, cmd, n, v);
  }
  if (cmd == "policy") return CmdPolicy(socket, n, v);
  if (cmd == "audit") return CmdAudit(n, v);
  fprintf(stderr, "writ: unknown command '%s'\n", cmd.c_str());
  Usage(stderr);
  return kExitUsage;
}
