// Load test (issue #7 deliverable 6, issue #8's ">= 340k events/s with 0 drops, two producers"):
// producers on every CPU, inside one monitored task, open+close a repository file as fast as they
// can for WRIT_LOAD_SECONDS (default 10 s here; `scripts/bench/side_by_side.sh --load-seconds 60`
// runs the long one).
//
// What it asserts is that nothing is lost without being counted, not that nothing is lost: whether
// a 2-vCPU machine shared with its producers keeps up is a benchmark result (printed, and reported
// in docs/performance.md), while an unaccounted record is a defect on any machine.
//   * kernel -> writd: every record the task's processes caused is either judged by writd or
//   counted
//     as a drop (kernel ring-buffer reserve failure, decode error, unattributed). The producers
//     report exactly how many opens they made; a tiny run of the same command first measures what
//     the rest of the task costs (loader opens, exec, fork, exit), so the equation is exact.
//   * writd -> sink: every judged record reached the sink or its drop counter.
//   * after the tasks end: no process-table entries and no BPF map entries left behind, writd's
//   peak
//     RSS bounded.
// Needs root (writd loads BPF); skips otherwise.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

struct Status {
  std::map<std::string, uint64_t> events, drops, counters;
  uint64_t userspace_drops = 0;
  int tasks = -1;

  uint64_t Sum(const std::map<std::string, uint64_t>& m) const {
    uint64_t n = 0;
    for (const auto& [k, v] : m) n += v;
    return n;
  }
  uint64_t judged() const { return Sum(events); }
  uint64_t kernel_drops() const { return Sum(drops); }
  uint64_t counter(const std::string& k) const {
    auto it = counters.find(k);
    return it == counters.end() ? 0 : it->second;
  }
  // Records that reached writd or were counted on the way: judged + kernel drops + userspace losses
  // before judging (decode errors, records of an already removed task).
  uint64_t accounted() const {
    return judged() + kernel_drops() + counter("decode_errors") + counter("unattributed");
  }
  uint64_t sink_total() const {
    uint64_t n = 0;
    for (const auto& [k, v] : counters) {
      if (k.rfind("sink_", 0) == 0 &&
          (k.size() > 10 && (k.compare(k.size() - 10, 10, "_delivered") == 0 ||
                             k.compare(k.size() - 8, 8, "_dropped") == 0))) {
        n += v;
      }
    }
    return n;
  }
  uint64_t sink_dropped() const {
    uint64_t n = 0;
    for (const auto& [k, v] : counters) {
      if (k.rfind("sink_", 0) == 0 && k.size() > 8 && k.compare(k.size() - 8, 8, "_dropped") == 0) {
        n += v;
      }
    }
    return n;
  }
  uint64_t map_entries() const {
    uint64_t n = 0;
    for (const auto& [k, v] : counters) {
      if (k.rfind("map_", 0) == 0) n += v;
    }
    return n;
  }
};

// "label: k=v k=v" -> map
std::map<std::string, uint64_t> Pairs(const std::string& rest) {
  std::map<std::string, uint64_t> m;
  std::istringstream in(rest);
  std::string kv;
  while (in >> kv) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    m[kv.substr(0, eq)] = std::strtoull(kv.c_str() + eq + 1, nullptr, 10);
  }
  return m;
}

Status ParseStatus(const std::string& text) {
  Status s;
  std::istringstream in(text);
  std::string line;
  auto after = [](const std::string& l, const std::string& prefix) {
    return l.substr(prefix.size());
  };
  while (std::getline(in, line)) {
    if (line.rfind("events by kind:", 0) == 0) s.events = Pairs(after(line, "events by kind:"));
    if (line.rfind("drops by kind:", 0) == 0) s.drops = Pairs(after(line, "drops by kind:"));
    if (line.rfind("counters:", 0) == 0) s.counters = Pairs(after(line, "counters:"));
    if (line.rfind("userspace drops:", 0) == 0) {
      s.userspace_drops = std::strtoull(line.c_str() + 16, nullptr, 10);
    }
    if (line.rfind("tasks:", 0) == 0) s.tasks = std::atoi(line.c_str() + 6);
  }
  return s;
}

// "key=value" from the workload's result line.
double Field(const std::string& out, const std::string& key) {
  const size_t p = out.find(" " + key + "=");
  if (p == std::string::npos) return -1;
  return std::strtod(out.c_str() + p + key.size() + 2, nullptr);
}

uint64_t ProcStatusKb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0)
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

// writd's CPU time so far (all threads, user + system), in microseconds.
uint64_t ProcCpuUs(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');  // comm may contain spaces: fields count from after it
  if (paren == std::string::npos) return 0;
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return (utime + stime) * 1000000 / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
}

class WritdLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "e2e needs root: writd loads BPF programs";
    WritdInstance::Options o;
    o.mode = "monitor";
    std::ifstream in(std::string(WRIT_SOURCE_DIR) + "/policies/coding-agent.yaml");
    std::stringstream ss;
    ss << in.rdbuf();
    ASSERT_FALSE(ss.str().empty()) << "policies/coding-agent.yaml not found";
    o.policies["coding-agent.yaml"] = ss.str();
    // Millions of JSON lines: encoded and written as always, but to /dev/null instead of filling
    // /tmp.
    o.extra_args = {"--events", "/dev/null"};
    auto st = w_.Start(o);
    ASSERT_TRUE(st.ok()) << st;
    repo_ = w_.dir() + "/repo";
    std::filesystem::create_directories(repo_);
    std::ofstream(repo_ + "/file") << "load test file\n";
  }

  Status Now() {
    CmdResult r = w_.Writ({"status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ParseStatus(r.out);
  }
  // Waits (bounded) until no task is left and the sinks have settled (the counters stop moving).
  Status Settled() {
    Status s = Now();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      Status n = Now();
      if (n.tasks == 0 && s.tasks == 0 && n.accounted() == s.accounted() &&
          n.sink_total() == s.sink_total()) {
        return n;
      }
      s = n;
    }
    ADD_FAILURE() << "writd did not settle within 60 s (tasks " << s.tasks << ")";
    return s;
  }
  CmdResult Producers(long n, double seconds, int procs) {
    return w_.Writ(
        {"run", "--agent", "spiffe://example.org/load", "--intent", "coding-agent", "--param",
         "repo=" + repo_, "--", WORKLOAD_BIN, "open", std::to_string(n), "--file", repo_ + "/file",
         "--procs", std::to_string(procs), "--max-seconds", std::to_string(seconds)},
        std::chrono::milliseconds(static_cast<long>(seconds * 1000) + 60000));
  }

  WritdInstance w_;
  std::string repo_;
};

TEST_F(WritdLoad, EveryRecordIsJudgedOrCountedAndNothingLeaks) {
  const char* env = getenv("WRIT_LOAD_SECONDS");
  const double seconds = env ? std::atof(env) : 10.0;
  ASSERT_GT(seconds, 0) << "WRIT_LOAD_SECONDS must be a positive number of seconds";
  const int procs = static_cast<int>(std::max(2L, sysconf(_SC_NPROCESSORS_ONLN)));

  const Status s0 = Settled();
  const uint64_t rss0 = ProcStatusKb(w_.pid(), "VmRSS");
  // The leak checks at the end compare counters that `writ status` must print: one renamed or gone
  // must fail here, not compare 0 with 0.
  ASSERT_TRUE(s0.counters.count("process_table_entries")) << "no process_table_entries counter";
  ASSERT_TRUE(std::any_of(s0.counters.begin(), s0.counters.end(), [](const auto& kv) {
    return kv.first.rfind("map_", 0) == 0;
  })) << "no map_*_entries counters";

  // The fixed cost of the task: the same command with one open per producer.
  CmdResult base = Producers(procs, 30, procs);
  ASSERT_EQ(base.exit_code, 0) << base.err;
  const double base_opens = Field(base.out, "syscalls");
  ASSERT_GT(base_opens, 0) << base.out;
  const Status s1 = Settled();
  const int64_t task_other =
      static_cast<int64_t>(s1.accounted() - s0.accounted()) - static_cast<int64_t>(base_opens);
  ASSERT_GE(task_other, 0) << "the small run accounted fewer records than it made opens";
  ASSERT_EQ(s1.kernel_drops(), s0.kernel_drops()) << "drops in a run of " << base_opens << " opens";

  // The load: as fast as the producers go, bounded by time.
  const uint64_t cpu1 = ProcCpuUs(w_.pid());
  CmdResult load = Producers(1000000000000L, seconds, procs);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  const double opens = Field(load.out, "syscalls");
  const double rate = Field(load.out, "ops_per_sec");
  ASSERT_GT(opens, 0) << load.out;
  const Status s2 = Settled();
  const uint64_t cpu2 = ProcCpuUs(w_.pid());
  const uint64_t hwm = ProcStatusKb(w_.pid(), "VmHWM");
  const uint64_t rss2 = ProcStatusKb(w_.pid(), "VmRSS");

  const uint64_t produced = static_cast<uint64_t>(opens) + static_cast<uint64_t>(task_other);
  const uint64_t judged = s2.judged() - s1.judged();
  const uint64_t kdrops = s2.kernel_drops() - s1.kernel_drops();
  const uint64_t udrops = (s2.counter("decode_errors") - s1.counter("decode_errors")) +
                          (s2.counter("unattributed") - s1.counter("unattributed"));
  const uint64_t sink = s2.sink_total() - s1.sink_total();
  const uint64_t sink_drops = s2.sink_dropped() - s1.sink_dropped();
  // One machine-readable line for scripts/bench/side_by_side.sh and docs/performance.md.
  // writd's CPU per judged record over the load and its settling (all threads; clock-tick
  // resolution).
  const double cpu_per_event_us = judged ? static_cast<double>(cpu2 - cpu1) / judged : 0;
  printf(
      "LOAD producers=%d seconds=%.1f opens=%.0f rate=%.0f/s produced=%lu judged=%lu "
      "kernel_drops=%lu userspace_drops=%lu sink_lines=%lu sink_drops=%lu "
      "writd_cpu_us_per_event=%.2f "
      "rss_kb=%lu peak_rss_kb=%lu rss_after_kb=%lu map_entries=%lu->%lu process_table=%lu->%lu\n",
      procs, seconds, opens, rate, produced, judged, kdrops, udrops, sink, sink_drops,
      cpu_per_event_us, rss0, hwm, rss2, s0.map_entries(), s2.map_entries(),
      s0.counter("process_table_entries"), s2.counter("process_table_entries"));

  // kernel -> writd: seen + counted drops == produced, exactly.
  EXPECT_EQ(judged + kdrops + udrops, produced)
      << "records lost without a counter (or counted twice): " << load.out;
  // writd -> sink: every judged record (plus the tasks' synthetic events) was delivered or counted
  // as dropped by the sink (one sink here: the events file).
  EXPECT_GE(sink, judged) << "judged records neither delivered nor counted by the sink";
  // Nothing left behind once the tasks are gone.
  EXPECT_EQ(s2.map_entries(), s0.map_entries()) << "BPF map entries left after the tasks ended";
  EXPECT_EQ(s2.counter("process_table_entries"), s0.counter("process_table_entries"))
      << "process-table entries left after the tasks ended";
  for (const auto& [k, v] : s2.counters) {
    if (k.rfind("map_", 0) == 0) {
      EXPECT_EQ(v, s0.counter(k)) << k;
    }
  }
  // Bounded memory: the ring buffer (4 MiB, mapped twice), sink queues (10k lines each) and the
  // process table (64k entries) bound writd's footprint whatever the event rate.
  EXPECT_LT(hwm, 256u * 1024) << "writd peak RSS " << hwm << " kB";
  EXPECT_GT(hwm, 0u);
}

}  // namespace
}  // namespace writ::testlib
