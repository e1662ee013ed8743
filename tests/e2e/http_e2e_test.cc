// writd's HTTP endpoints against the agent (issue 16, item 5; issue 24): the port is reachable from
// inside every task. A task that holds hundreds of connections open, idle or trickling (slowloris),
// reopening each one writd closes, cannot keep its own credential from being checked: POST
// /introspect from outside still answers, within its deadline. A request from inside a task with a
// foreign Host (what a browser the agent drives sends after DNS rebinding) is refused with 421 and
// reads nothing. Needs root (writd loads BPF); skips otherwise.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

using ::testing::HasSubstr;

constexpr char kIntent[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: t-http
exec: {deny: [/usr/bin/sudo]}
)";

// Inside the task: 200 idle and 200 slowloris connections to writd's HTTP port, each one writd
// closes opened again, until `<ready>.done` appears or 30 s pass. Writes the number it holds to
// <ready>.
constexpr char kHolder[] = R"(
import os, socket, sys, time
port, ready = int(sys.argv[1]), sys.argv[2]
head = b"POST /introspect HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % port
def conn(slow):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.setblocking(False)
        if slow:
            s.send(head)
        return s
    except OSError:
        return None
socks = [(conn(False), False) for _ in range(200)] + [(conn(True), True) for _ in range(200)]
with open(ready + ".tmp", "w") as f:
    f.write(str(sum(1 for s, _ in socks if s)))
os.rename(ready + ".tmp", ready)
reopened, end = 0, time.time() + 30
while time.time() < end and not os.path.exists(ready + ".done") and reopened < 50000:
    for i, (s, slow) in enumerate(socks):
        alive = s is not None
        if alive:
            try:
                alive = s.recv(4096, socket.MSG_PEEK) != b""
            except BlockingIOError:
                pass
            except OSError:
                alive = False
        if alive and slow:
            try:
                s.send(b"a")
            except OSError:
                alive = False
        if not alive:
            if s is not None:
                s.close()
            socks[i] = (conn(slow), slow)
            reopened += 1
    time.sleep(0.2)
print("reopened", reopened)
)";

std::string Q(const std::string& s) { return "'" + s + "'"; }  // our paths have no quotes

class WritdHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
    port_ = 20000 + static_cast<int>((getpid() * 7) % 20000);
    WritdInstance::Options o;
    o.mode = "record";
    o.policies = {{"http.yaml", kIntent}};
    o.extra_args = {"--http", absl::StrCat("127.0.0.1:", port_)};
    ASSERT_TRUE(w_.Start(o).ok()) << w_.log();
  }
  void TearDown() override {
    if (w_.running()) {
      EXPECT_EQ(w_.Stop(), 0) << w_.log();
    }
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }

  WritdInstance w_;
  int port_ = 0;
};

TEST_F(WritdHttp, ATaskHoldingConnectionsCannotStarveIntrospect) {
  const std::string dir = w_.dir();
  const std::string script = dir + "/holder.py", ready = dir + "/holder.ready",
                    token = dir + "/task.jwt";
  std::ofstream(script) << kHolder;
  // The task takes its own JWT-SVID, then attacks the endpoint that checks it.
  const std::string workload = std::filesystem::path(w_.socket()).parent_path() / "workload.sock";
  const std::string svid = "SPIFFE_ENDPOINT_SOCKET=" + Q("unix:" + workload) + " " +
                           absl::StrJoin(WritInTaskArgv(), " ") +
                           " svid --audience https://db.example.org > " + Q(token);
  pid_t run =
      w_.WritAsync({"run", "--agent", "spiffe://example.org/agent/x", "--", "/bin/sh", "-c",
                    absl::StrCat(svid, " && exec python3 ", Q(script), " ", port_, " ", Q(ready))},
                   "holder");
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (!std::filesystem::exists(ready) && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(std::filesystem::exists(ready)) << Slurp(dir + "/holder.err") << w_.log();
  EXPECT_GE(std::stoi(Slurp(ready)), 380) << "the task could not open its connections";
  const std::string jwt(absl::StripAsciiWhitespace(Slurp(token)));
  ASSERT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2) << jwt;
  // While the task keeps its 400 connections open (and reopens what writd closes): every check of
  // its token answers, well inside curl's 2 s limit and writd's own 5 s request deadline.
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    CmdResult r = RunCommand({"/usr/bin/curl", "-s", "--max-time", "2", "-w", "\n%{http_code}",
                              "-d", "token=" + jwt, Url("/introspect")},
                             std::chrono::seconds(5));
    EXPECT_EQ(r.exit_code, 0) << i << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("\"active\":true")) << i;
    answered += r.out.size() > 3 && r.out.substr(r.out.size() - 3) == "200";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(answered, 20);
  std::ofstream(ready + ".done") << "done";
  CmdResult held = w_.WaitAsync(run, "holder", std::chrono::seconds(40));
  EXPECT_EQ(held.exit_code, 0) << held.err;
  EXPECT_THAT(held.out, HasSubstr("reopened"));
  // writd counted what it closed to make room.
  CmdResult m = RunCommand({"/usr/bin/curl", "-sf", Url("/metrics")});
  std::smatch sm;
  ASSERT_TRUE(
      std::regex_search(m.out, sm, std::regex(R"(writ_http_connections_evicted_total (\d+))")))
      << m.out;
  EXPECT_GT(std::stoi(sm[1]), 0);
}

// A browser the agent drives, on a page whose name was rebound to 127.0.0.1, sends that name as
// Host: refused before any handler runs. The same request with writd's own address is served.
TEST_F(WritdHttp, AForeignHostFromInsideATaskIsRefused) {
  const std::string curl =
      absl::StrCat("/usr/bin/curl -s --max-time 5 -o /dev/null -w '%{http_code}\\n' ");
  CmdResult r =
      w_.Writ({"run", "--agent", "spiffe://example.org/agent/x", "--", "/bin/sh", "-c",
               absl::StrCat(curl, "-H 'Host: attacker.example:", port_, "' ", Url("/metrics"), "; ",
                            curl, "-H 'Host: attacker.example:", port_, "' ", Url("/jwks.json"),
                            "; ", curl, Url("/metrics"))});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "421\n421\n200\n");
  CmdResult m = RunCommand({"/usr/bin/curl", "-sf", Url("/metrics")});
  EXPECT_THAT(m.out, HasSubstr("writ_http_requests_refused_total{reason=\"host\"} 2")) << m.out;
}

}  // namespace
}  // namespace writ::testlib
