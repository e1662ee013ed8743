// Engine throughput: a realistic mixed stream (mostly opens under /usr and the repo, some execs and
// connects, a few violations) judged against the coding-agent intent. Target: >= 2M events/s/core.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "intent/intent.h"

namespace writ::intent {
namespace {

const char* kCodingAgent = R"(apiVersion: writ.dev/v1
kind: Intent
name: coding-agent
frameworks: [OWASP-ASI02, OWASP-ASI03, OWASP-ASI05, OWASP-NHI5, MAESTRO-L4, NIST-AI-RMF-MANAGE-2.4]
params:
  repo: {type: path, required: true}
exec:
  allow: [/usr/bin/git, /usr/bin/make, "/usr/lib/git-core/**"]
  deny: [/usr/bin/sudo]
files:
  read: ["${repo}/**", "/usr/**", "/lib/**", "/etc/ld.so.cache"]
  write: ["${repo}/**", "/tmp/**"]
  deny: [/etc/shadow, "**/.ssh/**", "**/.env"]
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [8080]}, {host: localhost, ports: ["9000-9100"]}]
    deny: []
limits: {ttl: 30m, hours: "00:00-24:00 UTC", max_processes: 64}
approval:
  - {exec: /usr/bin/git, args: [push, "**"], timeout: 5m}
on_violation: [alert, kill, revoke]
)";

writ::v1::Event Open(const std::string& p, std::vector<const char*> flags) {
  writ::v1::Event e;
  e.set_kind("open");
  e.mutable_file()->set_path(p);
  for (const char* f : flags) e.mutable_file()->add_flags(f);
  return e;
}
writ::v1::Event Exec(const std::string& exe, std::vector<const char*> args) {
  writ::v1::Event e;
  e.set_kind("exec");
  e.mutable_process()->set_exe(exe);
  for (const char* a : args) e.mutable_process()->add_args(a);
  return e;
}
writ::v1::Event Connect(const std::string& ip, uint32_t port) {
  writ::v1::Event e;
  e.set_kind("connect");
  e.mutable_network()->set_family("inet");
  e.mutable_network()->set_dst_ip(ip);
  e.mutable_network()->set_dst_port(port);
  return e;
}

// 100 events: 80 opens (45 /usr + /lib, 30 repo, 5 other incl. violations), 12 execs, 8 connects.
std::vector<writ::v1::Event> Stream() {
  std::vector<writ::v1::Event> s;
  const char* usr[] = {"/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
                       "/usr/share/locale/locale.alias", "/lib/x86_64-linux-gnu/libz.so.1",
                       "/usr/lib/git-core/git", "/usr/share/zoneinfo/UTC", "/usr/include/c++/12/vector",
                       "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus", "/usr/bin/make"};
  const char* repo[] = {"/home/dev/proj/src/engine/intent.cc", "/home/dev/proj/.git/HEAD",
                        "/home/dev/proj/.git/objects/ab/cdef0123456789", "/home/dev/proj/CMakeLists.txt",
                        "/home/dev/proj/build/obj/intent.o", "/home/dev/proj/include/writ/v1/event.proto"};
  for (int i = 0; i < 45; ++i) s.push_back(Open(usr[i % 9], {"read"}));
  for (int i = 0; i < 30; ++i) {
    s.push_back(Open(repo[i % 6], i % 3 == 0 ? std::vector<const char*>{"write", "create", "truncate"}
                                             : std::vector<const char*>{"read"}));
  }
  s.push_back(Open("/etc/ld.so.cache", {"read"}));
  s.push_back(Open("/tmp/ccXyZ.s", {"write", "create"}));
  s.push_back(Open("/etc/passwd", {"read"}));                 // violation: default
  s.push_back(Open("/home/dev/.ssh/id_ed25519", {"read"}));   // violation: deny glob
  s.push_back(Open("/home/dev/proj/.env", {"read"}));         // violation: deny glob
  for (int i = 0; i < 12; ++i) {
    switch (i % 4) {
      case 0: s.push_back(Exec("/usr/bin/git", {"git", "status"})); break;
      case 1: s.push_back(Exec("/usr/bin/make", {"make", "-j2"})); break;
      case 2: s.push_back(Exec("/usr/lib/git-core/git-remote-https", {"git-remote-https", "origin"})); break;
      default: s.push_back(Exec("/usr/bin/git", {"git", "push", "origin", "main"})); break;
    }
  }
  for (int i = 0; i < 8; ++i) s.push_back(Connect(i % 4 == 3 ? "140.82.112.3" : "127.0.0.1", i % 2 ? 9050 : 8080));
  return s;
}

void BM_EvaluateMixed(benchmark::State& state) {
  auto set = LoadPolicyText(kCodingAgent, "bench.yaml");
  if (!set.ok()) {
    state.SkipWithError(std::string(set.status().message()).c_str());
    return;
  }
  auto ci = Compile(set->intents()[0], {{"repo", "/home/dev/proj"}});
  if (!ci.ok()) {
    state.SkipWithError(std::string(ci.status().message()).c_str());
    return;
  }
  const auto stream = Stream();
  const EvalContext ctx{absl::Now(), 4};
  size_t i = 0;
  int64_t violations = 0;
  for (auto _ : state) {
    Verdict v = Evaluate(**ci, stream[i], ctx);
    violations += v.kind == Verdict::kViolation;
    benchmark::DoNotOptimize(v);
    if (++i == stream.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["violation_share"] = static_cast<double>(violations) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EvaluateMixed);

// Per-kind costs, to see which path dominates when the mix changes.
void BM_EvaluateOne(benchmark::State& state, writ::v1::Event ev) {
  auto set = LoadPolicyText(kCodingAgent, "bench.yaml");
  auto ci = Compile(set->intents()[0], {{"repo", "/home/dev/proj"}});
  const EvalContext ctx{absl::Now(), 4};
  for (auto _ : state) benchmark::DoNotOptimize(Evaluate(**ci, ev, ctx));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_EvaluateOne, open_usr_prefix, Open("/usr/lib/x86_64-linux-gnu/libc.so.6", {"read"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, open_repo_write, Open("/home/dev/proj/src/a/b/c.cc", {"write", "truncate"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, open_default_deny, Open("/etc/passwd", {"read"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, exec_allow, Exec("/usr/bin/git", {"git", "status"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, exec_approval, Exec("/usr/bin/git", {"git", "push", "origin", "main"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, connect_allow, Connect("127.0.0.1", 9050));

}  // namespace
}  // namespace writ::intent

BENCHMARK_MAIN();
