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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "actions/self_filter.h"
#include "api/client.h"
#include "api/framing.h"
#include "cli/cli_util.h"
#include "cli/policy_offline.h"
#include "cli/run.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "intent/intent.h"
#include "journal/journal.h"
#include "sinks/json_encoder.h"
#include "sinks/ocsf_encoder.h"
#include "util/terminal_text.h"
#include "util/util.h"
#include "writ/v1/workload.grpc.pb.h"

namespace {

using writ::cli::Args;
using writ::cli::CmdRun;
using writ::cli::Dial;
using writ::cli::Fail;
using writ::cli::kExitUsage;
using writ::cli::Parse;
using writ::v1::Request;
using writ::v1::Response;

void Usage(FILE* f) {
  fprintf(
      f,
      "usage: writ [--socket PATH] COMMAND ...\n"
      "  run --agent SPIFFE_ID [--principal P] [--intent NAME] [--param K=V]... [--ttl D]\n"
      "      [--parent TASK] [--user NAME | --allow-root] [--no-seccomp]\n"
      "      [--mcp [--mcp-max-message BYTES]] -- CMD [ARGS...]\n"
      "      run CMD as a task, as an unprivileged user: the invoking user (behind sudo: the real\n"
      "      user), or --user NAME; as root only with --allow-root and an intent that allows it\n"
      "      (--no-seccomp: without the self-protection filter; only the BPF fallback applies)\n"
      "      (--mcp: CMD is a stdio MCP server; writ relays and judges its JSON-RPC, intent "
      "tools:)\n"
      "  status                                  hooks, enforcement, counters, tasks\n"
      "  svid --audience AUD [--workload-socket PATH]   (inside a task) print a JWT-SVID\n"
      "  tail [--violations] [--agent ID] [--task ID] [--format text|json|ocsf]\n"
      "  approvals | approve ID [--scope once|task] [--reason T] | deny ID [--reason T]\n"
      "  kill TASK | freeze TASK | thaw TASK | revoke TASK\n"
      "  console-login                           a one-time login link to the approvals console\n"
      "  policy check [DIR|FILE...] | policy test [DIR] | policy reload\n"
      "  policy bundle --key PRIVATE.pem --version N [--signer S] [--out FILE] DIR|FILE...\n"
      "  policy apply BUNDLE                     put a signed policy bundle in force\n"
      "  policy explain --intent NAME [--policies DIR] [--param K=V]... --event JSON\n"
      "  policy suggest --from EVENTS.jsonl --task ID [--name NAME] [--check]\n"
      "  policy suggest --from EVENTS.jsonl --task ID --diff INTENT [--policies DIR] [--param "
      "K=V]...\n"
      "  audit verify [PATH]                     check the hash-chained journal\n"
      "                                          (default /var/lib/writ/journal.jsonl)\n");
}

absl::StatusOr<Response> Call(const std::string& socket, const Request& req) {
  auto fd = Dial(socket);
  if (!fd.ok()) return fd.status();
  return writ::api::Call(fd->get(), req);
}

int CmdStatus(const std::string& socket) {
  Request req;
  req.mutable_status();
  auto resp = Call(socket, req);
  if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
  const auto& s = resp->status();
  printf("writd %s, mode %s, %u intents loaded\n", s.version().c_str(), s.mode().c_str(),
         s.intents_loaded());
  if (!s.policy_error().empty())
    printf("policy reload FAILED (old policy in force):\n%s\n", s.policy_error().c_str());
  if (s.policy_bundle().version() != 0) {
    const auto& b = s.policy_bundle();
    printf("policy bundle: version %lu (%s), key %s%s%s, applied %s\n",
           static_cast<unsigned long>(b.version()), b.sha256().substr(0, 12).c_str(),
           b.key_id().c_str(), b.signer().empty() ? "" : ", signer ",
           writ::TerminalSafe(b.signer()).c_str(), b.applied().c_str());
  }
  if (!s.policy_bundle().last_error().empty()) {
    printf("policy bundle refused (%lu since start), the policy in force stays:\n%s\n",
           static_cast<unsigned long>(s.policy_bundle().refused()),
           writ::TerminalSafe(s.policy_bundle().last_error()).c_str());
  }
  printf("hooks:\n");
  for (const auto& h : s.hooks()) {
    printf("  %-45s %s\n", h.name().c_str(), h.active() ? "active" : h.detail().c_str());
  }
  printf("enforcement:\n");
  for (const auto& h : s.enforcement()) {
    printf("  %-60s %s\n", h.name().c_str(), h.active() ? "active" : h.detail().c_str());
  }
  printf("events by kind:");
  for (const auto& [k, v] :
       std::map<std::string, uint64_t>(s.events_by_kind().begin(), s.events_by_kind().end())) {
    printf(" %s=%lu", k.c_str(), static_cast<unsigned long>(v));
  }
  printf("\ndrops by kind:");
  for (const auto& [k, v] :
       std::map<std::string, uint64_t>(s.drops_by_kind().begin(), s.drops_by_kind().end())) {
    printf(" %s=%lu", k.c_str(), static_cast<unsigned long>(v));
  }
  printf("\nuserspace drops: %lu\n", static_cast<unsigned long>(s.userspace_drops()));
  printf("counters:");
  for (const auto& [k, v] :
       std::map<std::string, uint64_t>(s.counters().begin(), s.counters().end())) {
    printf(" %s=%lu", k.c_str(), static_cast<unsigned long>(v));
  }
  printf("\napprovals pending: %u\ntasks: %d\n", s.approvals_pending(), s.tasks_size());
  for (const auto& t : s.tasks()) {
    printf("  %s %s %s intent=%s mode=%s processes=%u%s%s\n", t.task_id().c_str(),
           t.state().c_str(), t.spiffe_id().c_str(), t.intent().empty() ? "-" : t.intent().c_str(),
           t.mode().c_str(), t.processes(),
           t.deadline().empty() ? "" : " deadline=", t.deadline().c_str());
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

// Prints a one-time link that signs this admin in to the approvals console: the decisions made
// there carry this user's name. The link works once, for a few minutes; keep it out of shared
// terminals.
int CmdConsoleLogin(const std::string& socket, int argc) {
  if (argc > 2) return Fail(kExitUsage, "usage: writ console-login");
  Request req;
  req.mutable_console_login();
  auto resp = Call(socket, req);
  if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
  const auto& l = resp->console_login();
  printf("%s\n", writ::TerminalSafe(l.url()).c_str());
  fprintf(stderr, "writ: open it in your browser before %s; it signs you in once, as %s\n",
          writ::TerminalSafe(l.expires()).c_str(), writ::TerminalSafe(l.who()).c_str());
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
  if (sub == "bundle") {
    Args a = Parse(argc, argv, 3, {"key", "version", "signer", "out"}, {});
    if (!a.error.empty()) return Fail(kExitUsage, a.error);
    return writ::cli::PolicyBundle(
        {a.positional, a.Get("key"), a.Get("version"), a.Get("signer"), a.Get("out")});
  }
  if (sub == "apply") {
    Args a = Parse(argc, argv, 3, {}, {});
    if (!a.error.empty()) return Fail(kExitUsage, a.error);
    if (a.positional.size() != 1) return Fail(kExitUsage, "policy apply needs one bundle file");
    auto envelope = writ::ReadFile(a.positional[0]);
    if (!envelope.ok()) return Fail(1, std::string(envelope.status().message()));
    Request req;
    req.mutable_apply_policy_bundle()->set_envelope(*envelope);
    auto resp = Call(socket, req);
    if (!resp.ok()) return Fail(1, std::string(resp.status().message()));
    const auto& b = resp->reload().bundle();
    printf("policy bundle version %lu in force (%s, key %s): %u intents loaded\n",
           static_cast<unsigned long>(b.version()), b.sha256().substr(0, 12).c_str(),
           b.key_id().c_str(), resp->reload().intents());
    return 0;
  }
  if (sub == "explain") {
    Args a = Parse(argc, argv, 3, {"intent", "policies", "param", "event"}, {});
    if (!a.error.empty()) return Fail(kExitUsage, a.error);
    return writ::cli::PolicyExplain({a.Get("intent"), a.Get("policies", DefaultPolicyDir()),
                                     a.Has("param") ? a.opts["param"] : std::vector<std::string>{},
                                     a.Get("event")});
  }
  if (sub == "suggest") {
    Args a = Parse(argc, argv, 3, {"from", "task", "name", "diff", "policies", "param"}, {"check"});
    if (!a.error.empty()) return Fail(kExitUsage, a.error);
    writ::cli::SuggestArgs sa{a.Get("from"),
                              a.Get("task"),
                              a.Get("name", "suggested"),
                              a.Has("check"),
                              a.Get("diff"),
                              a.Get("policies", DefaultPolicyDir()),
                              a.Has("param") ? a.opts["param"] : std::vector<std::string>{}};
    return writ::cli::PolicySuggest(sa);
  }
  return Fail(kExitUsage, absl::StrCat("unknown policy command ", sub));
}

// Fetches a JWT-SVID from writd's SPIFFE Workload API, the same way any SPIFFE client would: the
// caller is attested by the socket's peer credentials, so only a task's own processes get its
// identity.
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
  if (cmd == "console-login") return CmdConsoleLogin(socket, n);
  if (cmd == "kill" || cmd == "freeze" || cmd == "thaw" || cmd == "revoke") {
    return CmdTaskAction(socket, cmd, n, v);
  }
  if (cmd == "policy") return CmdPolicy(socket, n, v);
  if (cmd == "audit") return CmdAudit(n, v);
  fprintf(stderr, "writ: unknown command '%s'\n", cmd.c_str());
  Usage(stderr);
  return kExitUsage;
}
