// writd with `fleet:` (docs/fleet.md): NATS down when writd starts does not delay the start or
// enforcement; `writ status` says the link is down, and up once a server appears (libnats
// reconnects in its own thread). Real writd, real nats-server on loopback.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "testlib/nats_cluster.h"
#include "testlib/writd_fixture.h"

namespace writ {
namespace {

using testlib::CmdResult;
using testlib::NatsCluster;
using testlib::WritdInstance;

constexpr char kIntent[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: t-fleet
exec: {deny: [/usr/bin/id]}
files:
  read: ["/**"]
  write: ["/**"]
)";

TEST(FleetWritdE2e, StartsAndEnforcesWithNatsDownAndReportsTheLink) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
  if (std::string why = NatsCluster::SkipReason(); !why.empty()) GTEST_SKIP() << why;
  NatsCluster nats;
  ASSERT_TRUE(nats.Start(1).ok());
  ASSERT_TRUE(nats.KillAll().ok());  // its address is known and dead

  WritdInstance w;
  WritdInstance::Options o;
  o.mode = "enforce";
  o.policies = {{"fleet.yaml", kIntent}};
  o.extra_config = absl::StrCat("fleet: {servers: [", nats.url(0), "], name: e2e-host}\n");
  const int http_port = testlib::FreeLoopbackPort();
  o.extra_args = {"--http", absl::StrCat("127.0.0.1:", http_port)};
  const absl::Time t0 = absl::Now();
  ASSERT_TRUE(w.Start(o).ok()) << w.log();
  printf("writd started with its fleet link down in %s\n",
         absl::FormatDuration(absl::Now() - t0).c_str());

  CmdResult s = w.Writ({"status"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("fleet_connected=0"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("fleet_connects=0"), std::string::npos) << s.out;
  std::string metrics;
  ASSERT_EQ(testlib::HttpGet(http_port, "/metrics", &metrics), 200);
  EXPECT_NE(metrics.find("\nwrit_fleet_connected 0\n"), std::string::npos) << metrics;

  // Enforcement does not wait for the fleet.
  CmdResult r = w.Writ({"run", "--agent", "spiffe://example.org/agent/fleet", "--intent", "t-fleet",
                        "--", "/usr/bin/id"},
                       std::chrono::seconds(30));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(w.WaitForEvent([](const nlohmann::json& e) {
                  return e.value("verdict", "") == "violation" && e.value("kind", "") == "exec";
                }).is_null())
      << w.log();

  // NATS comes up: the link connects by itself.
  ASSERT_TRUE(nats.RestartAll().ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  for (;;) {
    s = w.Writ({"status"});
    if (s.out.find("fleet_connected=1") != std::string::npos) break;
    ASSERT_LT(absl::Now(), deadline) << "the link did not come up: " << s.out << w.log();
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_NE(s.out.find("fleet_connects=1"), std::string::npos) << s.out;
  ASSERT_EQ(testlib::HttpGet(http_port, "/metrics", &metrics), 200);
  EXPECT_NE(metrics.find("\nwrit_fleet_connected 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nwrit_fleet_connects_total 1\n"), std::string::npos) << metrics;
  EXPECT_EQ(w.Stop(), 0) << w.log();
}

}  // namespace
}  // namespace writ
