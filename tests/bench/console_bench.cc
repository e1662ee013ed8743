// What the approvals console costs each event writd emits while it is on (Console::Observe: a
// line of the task's history, the violations list), beside what every event already costs the
// JSONL sink (AppendJson), on the same events. docs/performance.md, "Approvals console".
#include <string>

#include "benchmark/benchmark.h"
#include "daemon/approvals.h"
#include "daemon/console.h"
#include "identity/task.h"
#include "sinks/json_encoder.h"

namespace {

using writ::v1::Event;

Event Exec(int i) {
  Event e;
  e.set_id("9f2c-1234");
  e.set_time("2026-12-07T10:00:00.123456789Z");
  e.set_kind("exec");
  e.mutable_agent()->set_task_id("t-" + std::to_string(i % 8));
  e.mutable_agent()->set_spiffe_id("spiffe://example.org/agent/coder");
  e.mutable_process()->set_exe("/usr/bin/git");
  for (const char* a : {"git", "-C", "/home/dev/repo", "status", "--porcelain"}) {
    e.mutable_process()->add_args(a);
  }
  e.set_verdict("allow");
  e.set_outcome("allowed");
  return e;
}

Event Open(int i, bool violation) {
  Event e;
  e.set_id("9f2c-1235");
  e.set_time("2026-12-07T10:00:00.123456789Z");
  e.set_kind("open");
  e.mutable_agent()->set_task_id("t-" + std::to_string(i % 8));
  e.mutable_agent()->set_spiffe_id("spiffe://example.org/agent/coder");
  e.mutable_file()->set_path(violation ? "/etc/shadow" : "/home/dev/repo/src/main.cc");
  e.mutable_file()->add_flags("read");
  e.set_verdict(violation ? "violation" : "allow");
  e.set_outcome(violation ? "prevented" : "allowed");
  if (violation) e.mutable_finding()->set_rule("coding-agent/files.deny[0]");
  return e;
}

struct Fixture {
  writ::identity::TaskRegistry registry{16};
  writ::daemon::Approvals approvals;
  std::unique_ptr<writ::daemon::Console> console;
  Fixture() {
    auto c =
        writ::daemon::Console::Create(writ::daemon::Console::Deps{registry, approvals, nullptr},
                                      writ::daemon::Console::Options{});
    console = std::move(*c);
  }
};

void BM_ConsoleObserve(benchmark::State& state) {
  Fixture f;
  const Event evs[] = {Exec(0), Open(1, false), Open(2, false), Open(3, state.range(0) != 0)};
  size_t i = 0;
  for (auto _ : state) f.console->Observe(evs[i++ & 3]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConsoleObserve)->Arg(0)->Arg(1)->ArgName("with_violations");

void BM_JsonEncode(benchmark::State& state) {
  const Event evs[] = {Exec(0), Open(1, false), Open(2, false), Open(3, state.range(0) != 0)};
  std::string out;
  size_t i = 0;
  for (auto _ : state) {
    out.clear();
    writ::sinks::AppendJson(evs[i++ & 3], &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JsonEncode)->Arg(0)->Arg(1)->ArgName("with_violations");

}  // namespace

BENCHMARK_MAIN();
