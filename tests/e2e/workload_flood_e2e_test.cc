// The Workload API under a flood from inside a task, against the real writd (docs/credentials.md,
// "Bounds"): a task opens many FetchJWTBundles streams, each on its own connection; it gets the
// per-task cap, the rest are refused with RESOURCE_EXHAUSTED and counted in `writ status` and
// /metrics, writd stays up, and another task still gets its SVID during the flood. Needs root.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/writd_fixture.h"

#ifndef WORKLOAD_FLOOD
#error "WORKLOAD_FLOOD must be defined"
#endif

namespace writ::testlib {
namespace {

using ::testing::HasSubstr;

// The counter `name` from `writ status` (-1 when absent).
long long Counter(const WritdInstance& w, const std::string& name) {
  CmdResult s = w.Writ({"status"});
  std::smatch m;
  std::regex re(" " + name + "=(\\d+)");
  return std::regex_search(s.out, m, re) ? std::stoll(m[1]) : -1;
}

TEST(WorkloadFloodE2e, StreamFloodFromATaskIsCappedCountedAndOthersStillGetSvids) {
  if (geteuid() != 0) GTEST_SKIP() << "e2e needs root: writd loads BPF programs";
  const int port = 20000 + static_cast<int>((getpid() * 7) % 20000);
  WritdInstance w;
  WritdInstance::Options o;
  o.mode = "monitor";
  o.extra_args = {"--http", absl::StrCat("127.0.0.1:", port)};
  ASSERT_TRUE(w.Start(o).ok()) << w.log();
  const std::string sock = w.dir() + "/run/workload.sock";
  EXPECT_EQ(Counter(w, "workload_streams_refused"), 0);

  constexpr int kStreams = 60;  // beyond the per-task cap (4), the total (32) and the threads (48)
  // (In a sanitizer tree LeakSanitizer cannot ptrace inside a task: leaks are not checked there.)
  pid_t flood = w.WritAsync({"run", "--agent", "spiffe://example.org/agent/flood", "--",
                             "/usr/bin/env", "ASAN_OPTIONS=detect_leaks=0", WORKLOAD_FLOOD,
                             "--socket", sock, "--streams", absl::StrCat(kStreams), "--hold", "4"},
                            "flood");
  // Wait until every stream was answered (the flood holds what it got for 4 s).
  std::string out;
  for (int i = 0; i < 300 && out.find("open=") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    out = Slurp(w.dir() + "/flood.out");
  }
  ASSERT_THAT(out, HasSubstr("open=4 refused=56 resource_exhausted=56 other=0"))
      << Slurp(w.dir() + "/flood.err") << w.log();

  // Meanwhile another task gets its SVID.
  auto svid_argv = [&] {
    std::vector<std::string> a = {"run", "--agent", "spiffe://example.org/agent/other", "--"};
    for (const auto& x : WritInTaskArgv()) a.push_back(x);
    for (const char* x : {"svid", "--audience", "db", "--workload-socket"}) a.push_back(x);
    a.push_back(sock);
    return a;
  };
  CmdResult svid = w.Writ(svid_argv());
  EXPECT_EQ(svid.exit_code, 0) << svid.err;
  EXPECT_THAT(svid.out,
              ::testing::MatchesRegex("ey[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\n"));

  // Counted where an operator looks.
  EXPECT_EQ(Counter(w, "workload_streams_open"), 4);
  const long long refused = Counter(w, "workload_streams_refused");
  printf("streams refused by writd's caps: %lld of %d (the rest by gRPC's thread quota)\n", refused,
         kStreams - 4);
  EXPECT_GE(refused, 1);
  EXPECT_LE(refused, kStreams - 4);  // gRPC's own thread-quota refusals are not ours to count
  CmdResult m =
      RunCommand({"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", port, "/metrics")});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_THAT(m.out, HasSubstr(absl::StrCat("writ_workload_api_streams_refused_total ", refused)));
  EXPECT_THAT(w.log(), HasSubstr("workload api: stream refused: task t-"));

  CmdResult r = w.WaitAsync(flood, "flood", std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // The flood's streams are given back when it ends; writd is up and serving.
  long long open = -1;
  for (int i = 0; i < 100 && open != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    open = Counter(w, "workload_streams_open");
  }
  EXPECT_EQ(open, 0);
  EXPECT_TRUE(w.running());
  EXPECT_EQ(kill(w.pid(), 0), 0);
  CmdResult again = w.Writ(svid_argv());
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(w.Stop(), 0) << w.log();
}

}  // namespace
}  // namespace writ::testlib
