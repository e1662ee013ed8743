// Policy bundles across a fleet (issue #19, item 4; docs/fleet.md "Policy bundles"): a 3-node
// nats-server cluster with JetStream on loopback and three writd as three hosts. A bundle applied
// with --fleet on one host is in force on every host; through a NATS node killed; a host that was
// down catches up when it is back; a bundle put into the bucket by someone without the signing key,
// or one whose intents do not load, is refused on every host and the version in force stays.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "fleet/bundle_feed.h"
#include "fleet/link.h"
#include "intent/bundle.h"
#include "testlib/bundle_keys.h"
#include "testlib/nats_cluster.h"
#include "testlib/writd_fixture.h"

namespace writ {
namespace {

using testlib::CmdResult;
using testlib::NatsCluster;
using testlib::WritdInstance;

std::string Intent(const std::string& name) {
  return absl::StrCat("apiVersion: writ.dev/v1\nkind: Intent\nname: ", name,
                      "\nfiles:\n  deny: [/etc/shadow]\nmode: enforce\n");
}

class FleetBundles : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
    if (std::string why = NatsCluster::SkipReason(); !why.empty()) GTEST_SKIP() << why;
    char tmpl[] = "/tmp/writ-fleet-bundle-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    signer_ = test_keys::NewKeyPair();
    std::ofstream(dir_ + "/signer.pub") << signer_.public_pem;
    std::ofstream(dir_ + "/signer.key") << signer_.private_pem;
    ASSERT_TRUE(nats_.Start(3).ok());
    for (int i = 0; i < 3; ++i) {
      WritdInstance::Options o;
      o.mode = "enforce";
      o.policies = {{"local.yaml", Intent("local")}};
      o.extra_config = absl::StrCat("policy_bundles: {public_keys: [", dir_, "/signer.pub]}\n",
                                    "fleet: {servers: [", absl::StrJoin(nats_.urls(), ", "),
                                    "], name: host", i, ", features: [bundles]}\n");
      hosts_[i] = std::make_unique<WritdInstance>();
      ASSERT_TRUE(hosts_[i]->Start(o).ok()) << hosts_[i]->log();
    }
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(WaitStatus(i, "fleet_connected=1", absl::Seconds(15))) << Status(i);
    }
  }
  void TearDown() override {
    for (auto& h : hosts_) h.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string Status(int i) { return hosts_[i]->Writ({"status"}).out; }
  bool WaitStatus(int i, const std::string& what, absl::Duration max) {
    const absl::Time deadline = absl::Now() + max;
    while (absl::Now() < deadline) {
      if (absl::StrContains(Status(i), what)) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }
  std::string Sign(uint64_t version, const std::vector<intent::BundleFile>& files,
                   const std::string& private_pem = "") {
    auto env = intent::SignBundle(files, version, "ci",
                                  private_pem.empty() ? signer_.private_pem : private_pem);
    EXPECT_TRUE(env.ok()) << env.status();
    const std::string path = absl::StrCat(dir_, "/v", version, "-", files.size(), ".bundle");
    std::ofstream(path) << (env.ok() ? *env : "");
    return path;
  }
  // Applies `bundle` with --fleet on host `from`; returns how long until every host has `version`.
  absl::Duration PublishAndWait(int from, const std::string& bundle, uint64_t version) {
    const absl::Time t0 = absl::Now();
    CmdResult r = hosts_[from]->Writ({"policy", "apply", "--fleet", bundle});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, "published to the fleet: revision")) << r.out;
    const std::string want = absl::StrCat("policy bundle: version ", version, " ");
    for (int i = 0; i < 3; ++i) {
      if (!hosts_[i]->running()) continue;
      EXPECT_TRUE(WaitStatus(i, want, absl::Seconds(10))) << "host" << i << ": " << Status(i);
    }
    return absl::Now() - t0;
  }

  std::string dir_;
  test_keys::PemPair signer_;
  NatsCluster nats_;
  std::array<std::unique_ptr<WritdInstance>, 3> hosts_;
};

TEST_F(FleetBundles, ABundleAppliedOnOneHostIsInForceOnEveryHostThroughFailures) {
  const absl::Duration d1 = PublishAndWait(0, Sign(1, {{"fleet.yaml", Intent("fleet-v1")}}), 1);
  printf("bundle v1 applied on host0, in force on all three hosts after %s\n",
         absl::FormatDuration(d1).c_str());
  for (int i = 0; i < 3; ++i) {
    CmdResult r = hosts_[i]->Writ({"run", "--agent", "spiffe://example.org/agent/f", "--intent",
                                   "fleet-v1", "--", "/usr/bin/true"},
                                  std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 0) << "host" << i << ": " << r.err;
  }

  // A NATS node dies: the bucket has three replicas, the hosts reconnect to the others.
  ASSERT_TRUE(nats_.Kill(0).ok());
  const absl::Duration d2 = PublishAndWait(1, Sign(2, {{"fleet.yaml", Intent("fleet-v2")}}), 2);
  printf("bundle v2 (one NATS node down) in force everywhere after %s\n",
         absl::FormatDuration(d2).c_str());
  ASSERT_TRUE(nats_.Restart(0).ok());

  // host2 is down while v3 is published; back, it catches up before anything else.
  ASSERT_EQ(hosts_[2]->Stop(), 0) << hosts_[2]->log();
  PublishAndWait(0, Sign(3, {{"fleet.yaml", Intent("fleet-v3")}}), 3);
  ASSERT_TRUE(hosts_[2]->Restart().ok()) << hosts_[2]->log();
  EXPECT_TRUE(WaitStatus(2, "policy bundle: version 3 ", absl::Seconds(30)))
      << Status(2) << hosts_[2]->log();
}

TEST_F(FleetBundles, WhatTheBucketHoldsIsTransportOnlyEveryHostChecksItAndKeepsItsVersion) {
  PublishAndWait(2, Sign(1, {{"fleet.yaml", Intent("fleet")}}), 1);
  // Anyone who may write the bucket (the cluster's credentials, not the signing key) puts a bundle
  // signed by another key there: every host refuses it.
  fleet::LinkOptions lo;
  lo.servers = nats_.urls();
  lo.name = "intruder";
  auto link = fleet::Link::Open(lo);
  ASSERT_TRUE(link.ok()) << link.status();
  for (int i = 0; i < 100 && !(*link)->connected(); ++i) absl::SleepFor(absl::Milliseconds(50));
  fleet::BundleFeed intruder(**link, {}, nullptr);
  test_keys::PemPair other = test_keys::NewKeyPair();
  auto forged =
      intent::SignBundle({{"fleet.yaml", Intent("wide-open")}}, 9, "intruder", other.private_pem);
  ASSERT_TRUE(forged.ok());
  ASSERT_TRUE(intruder.Publish(*forged).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitStatus(i, "bad signature", absl::Seconds(10))) << "host" << i << Status(i);
    EXPECT_TRUE(absl::StrContains(Status(i), "policy bundle: version 1 ")) << Status(i);
  }
  // Signed by the trusted key but with an intent that does not load (a newer writd's schema):
  // refused on every host with the file and line, v1 stays.
  auto broken = intent::SignBundle(
      {{"fleet.yaml", Intent("fleet2")}, {"typo.yaml", Intent("typo") + "exek: {}\n"}}, 2, "ci",
      signer_.private_pem);
  ASSERT_TRUE(broken.ok());
  ASSERT_TRUE(intruder.Publish(*broken).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitStatus(i, "typo.yaml:", absl::Seconds(10))) << "host" << i << Status(i);
    EXPECT_TRUE(absl::StrContains(Status(i), "policy bundle: version 1 ")) << Status(i);
    EXPECT_NE(hosts_[i]
                  ->Writ({"run", "--agent", "spiffe://example.org/agent/f", "--intent", "wide-open",
                          "--", "/usr/bin/true"},
                         std::chrono::seconds(30))
                  .exit_code,
              0);
  }
}

}  // namespace
}  // namespace writ
