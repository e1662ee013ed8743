// writd's signed policy bundles (src/daemon/bundles.h) over a real PolicyStore, with a thread in
// the pipeline's place applying reloads: a bundle is put in force whole or not at all, never an
// older version, and a restart comes back to it only while it still verifies byte for byte.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "daemon/bundles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/bundle_keys.h"

namespace writ::daemon {
namespace {

using ::testing::HasSubstr;

std::string Intent(const std::string& name) {
  return "apiVersion: writ.dev/v1\nkind: Intent\nname: " + name +
         "\nexec:\n  allow: [/usr/bin/true]\n";
}

class BundlesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-bundles-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/policies");
    std::ofstream(dir_ + "/policies/local.yaml") << Intent("local");
    pair_ = writ::test_keys::NewKeyPair();
    std::ofstream(dir_ + "/signer.pub") << pair_.public_pem;
    auto keys = intent::LoadBundleKeys({dir_ + "/signer.pub"});
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *keys;
    Start(keys_);
  }
  void TearDown() override {
    Stop();
    std::system(("rm -rf " + dir_).c_str());
  }

  // A writd's worth: the store, its bundles, and the pipeline thread applying reloads.
  void Start(std::vector<intent::BundleKey> keys, bool expect_restore_ok = true) {
    store_ = std::make_unique<PolicyStore>(dir_ + "/policies", nullptr);
    bundles_ = std::make_unique<PolicyBundles>(dir_ + "/state", std::move(keys), *store_);
    restore_ = bundles_->Restore();
    if (expect_restore_ok) {
      ASSERT_TRUE(restore_.ok()) << restore_;
      ASSERT_TRUE(store_->Load().ok());
    }
    stop_ = false;
    pipeline_ = std::thread([this] {
      while (!stop_) {
        store_->ApplyReload();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (pipeline_.joinable()) pipeline_.join();
  }
  void Restart(std::vector<intent::BundleKey> keys, bool expect_restore_ok = true) {
    Stop();
    bundles_.reset();
    store_.reset();
    Start(std::move(keys), expect_restore_ok);
  }

  std::string Sign(uint64_t version, std::vector<intent::BundleFile> files) {
    auto env = intent::SignBundle(files, version, "test", pair_.private_pem);
    EXPECT_TRUE(env.ok()) << env.status();
    return env.ok() ? *env : "";
  }
  bool InForce(const std::string& name) { return store_->Get()->Find(name) != nullptr; }

  std::string dir_;
  writ::test_keys::PemPair pair_;
  std::vector<intent::BundleKey> keys_;
  std::unique_ptr<PolicyStore> store_;
  std::unique_ptr<PolicyBundles> bundles_;
  absl::Status restore_;
  std::atomic<bool> stop_{false};
  std::thread pipeline_;
};

TEST_F(BundlesTest, ABundleReplacesThePolicyDirectoryWholeAndSurvivesARestart) {
  ASSERT_TRUE(InForce("local"));
  auto st = bundles_->Apply(Sign(1, {{"a.yaml", Intent("fleet-a")}, {"b.yaml", Intent("fleet-b")}}),
                            "root (uid 0)");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->version(), 1u);
  EXPECT_TRUE(InForce("fleet-a"));
  EXPECT_TRUE(InForce("fleet-b"));
  EXPECT_FALSE(InForce("local"));  // the bundle is the whole set, not an addition
  EXPECT_EQ(bundles_->State().version(), 1u);
  // `writ policy reload` now re-reads the bundle's files, not the policies directory.
  ASSERT_TRUE(store_->ReloadAndWait(absl::Seconds(5)).ok());
  EXPECT_TRUE(InForce("fleet-a"));

  Restart(keys_);
  EXPECT_TRUE(InForce("fleet-a"));
  EXPECT_FALSE(InForce("local"));
  EXPECT_EQ(bundles_->State().version(), 1u);
  EXPECT_EQ(bundles_->State().sha256(), st->sha256());
}

TEST_F(BundlesTest, OlderOrReusedVersionsAreRefusedTheSameBundleAgainIsANoOp) {
  const std::string v2 = Sign(2, {{"a.yaml", Intent("v2")}});
  ASSERT_TRUE(bundles_->Apply(v2, "t").ok());
  ASSERT_TRUE(bundles_->Apply(v2, "t").ok());  // delivered twice (the fleet may): nothing changes
  EXPECT_EQ(bundles_->State().refused(), 0u);
  auto old = bundles_->Apply(Sign(1, {{"a.yaml", Intent("v1")}}), "t");
  ASSERT_FALSE(old.ok());
  EXPECT_THAT(old.status().message(), HasSubstr("version 1 is not newer than version 2"));
  auto reused = bundles_->Apply(Sign(2, {{"a.yaml", Intent("other")}}), "t");
  ASSERT_FALSE(reused.ok());
  EXPECT_TRUE(InForce("v2"));
  EXPECT_FALSE(InForce("v1"));
  EXPECT_FALSE(InForce("other"));
  EXPECT_EQ(bundles_->State().refused(), 2u);
  EXPECT_THAT(bundles_->State().last_error(), HasSubstr("not newer"));
}

TEST_F(BundlesTest, ABundleWhoseIntentsDoNotLoadIsRefusedWithFileAndLineAndNothingChanges) {
  ASSERT_TRUE(bundles_->Apply(Sign(1, {{"a.yaml", Intent("good")}}), "t").ok());
  auto bad = bundles_->Apply(
      Sign(2, {{"a.yaml", Intent("fine")}, {"broken.yaml", Intent("broken") + "  nonsense: 1\n"}}),
      "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("bundle v2 does not load"));
  EXPECT_THAT(bad.status().message(), HasSubstr("broken.yaml:"));
  EXPECT_TRUE(InForce("good"));
  EXPECT_FALSE(InForce("fine"));  // not half applied
  EXPECT_EQ(bundles_->State().version(), 1u);
  // Its directory is gone; the next start comes back to v1.
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/state/bundles")) {
    EXPECT_FALSE(absl::StartsWith(e.path().filename().string(), "v2-")) << e.path();
  }
  Restart(keys_);
  EXPECT_TRUE(InForce("good"));
}

TEST_F(BundlesTest, ABadSignatureOrNoKeysChangesNothing) {
  writ::test_keys::PemPair other = writ::test_keys::NewKeyPair();
  auto env = intent::SignBundle({{"a.yaml", Intent("evil")}}, 9, "x", other.private_pem);
  ASSERT_TRUE(env.ok());
  auto r = bundles_->Apply(*env, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(InForce("local"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state/bundles/current"));

  Restart({});
  auto none = bundles_->Apply(Sign(1, {{"a.yaml", Intent("a")}}), "t");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("policy_bundles.public_keys is not configured"));
  EXPECT_TRUE(InForce("local"));
}

// A switch the pipeline thread did not take in time is withdrawn: a bundle reported refused must
// not be put in force later, unrecorded (a restart would then silently go back).
TEST_F(BundlesTest, ASwitchNotTakenInTimeIsWithdrawnAndNeverAppliedLater) {
  Stop();  // no pipeline thread: nothing applies the switch
  std::filesystem::create_directories(dir_ + "/other");
  std::ofstream(dir_ + "/other/other.yaml") << Intent("other");
  absl::Status st = store_->SwitchAndWait(dir_ + "/other", absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(st)) << st;
  ASSERT_TRUE(store_->ApplyReload());  // the pipeline thread back: a reload was still requested
  EXPECT_TRUE(InForce("local"));
  EXPECT_FALSE(InForce("other"));
  EXPECT_EQ(store_->dir(), dir_ + "/policies");
}

TEST_F(BundlesTest, ARestartRefusesABundleThatNoLongerVerifies) {
  auto st = bundles_->Apply(Sign(1, {{"a.yaml", Intent("a")}}), "t");
  ASSERT_TRUE(st.ok());
  const std::string bdir = dir_ + "/state/bundles/v1-" + st->sha256().substr(0, 12);
  ASSERT_TRUE(std::filesystem::exists(bdir + "/a.yaml"));

  // The key is no longer configured: writd does not start (nor fall back to the directory).
  Restart({}, /*expect_restore_ok=*/false);
  EXPECT_FALSE(restore_.ok());
  EXPECT_THAT(restore_.message(), HasSubstr("policy_bundles.public_keys is not set"));
  EXPECT_THAT(restore_.message(), HasSubstr("remove " + dir_ + "/state/bundles/current"));

  // A file changed on disk, or one added beside the bundle's: refused too.
  std::ofstream(bdir + "/a.yaml", std::ios::app) << "# edited\n";
  Restart(keys_, false);
  EXPECT_THAT(restore_.message(), HasSubstr("a.yaml was changed on disk"));
  std::ofstream(bdir + "/a.yaml") << Intent("a");
  Restart(keys_);
  std::ofstream(bdir + "/extra.yaml") << Intent("extra");
  Restart(keys_, false);
  EXPECT_THAT(restore_.message(), HasSubstr("holds files the bundle does not"));
}

}  // namespace
}  // namespace writ::daemon
