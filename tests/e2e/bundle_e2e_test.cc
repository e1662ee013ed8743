// Signed policy bundles through a real writd (issue 19, item 4; docs/policy.md "Signed policy
// bundles"): `writ policy bundle` signs a directory, `writ policy apply` puts it in force whole, a
// task runs under its intents, a bad bundle (signature, version, an intent that does not load) is
// refused with the reason while the version in force stays, a restart comes back to it, and a
// process inside a task cannot apply one (a `self` finding that runs its responses).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/bundle.h"
#include "testlib/bundle_keys.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgent[] = "spiffe://example.org/agent/fleet";

std::string Intent(const std::string& name, const std::string& extra = "") {
  return absl::StrCat(
      "apiVersion: writ.dev/v1\nkind: Intent\nname: ", name,
      "\nfiles:\n  deny: [/etc/shadow]\non_violation: [alert, kill]\nmode: enforce\n", extra);
}

class Bundles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/writ-bundle-e2e-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    keys_ = tmpl;
    chmod(keys_.c_str(), 0755);  // agents read the bundle files they try to apply
    test_keys::PemPair signer = test_keys::NewKeyPair();
    test_keys::PemPair other = test_keys::NewKeyPair();
    std::ofstream(keys_ + "/signer.key") << signer.private_pem;
    std::ofstream(keys_ + "/signer.pub") << signer.public_pem;
    std::ofstream(keys_ + "/other.key") << other.private_pem;
    WritdInstance::Options o;
    o.mode = "enforce";
    o.policies["local.yaml"] = Intent("local");
    o.extra_config = absl::StrCat("policy_bundles:\n  public_keys: [", keys_, "/signer.pub]\n");
    writd_.Start(o);
  }
  static void TearDownTestSuite() {
    writd_.Stop();
    if (!keys_.empty()) std::filesystem::remove_all(keys_);
  }
  void SetUp() override { WRIT_SUITE_WRITD_READY(writd_); }

  // Writes `files` into a fresh directory and signs it; returns the bundle's path.
  static std::string Bundle(const std::string& name, uint64_t version,
                            const std::map<std::string, std::string>& files,
                            const std::string& key = "signer.key", CmdResult* out = nullptr) {
    const std::string dir = keys_ + "/" + name;
    std::filesystem::create_directories(dir);
    for (const auto& [f, text] : files) std::ofstream(dir + "/" + f) << text;
    const std::string path = keys_ + "/" + name + ".bundle";
    CmdResult r = writd_->Writ({"policy", "bundle", "--key", keys_ + "/" + key, "--version",
                                std::to_string(version), "--signer", "ci", "--out", path, dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    chmod(path.c_str(), 0644);
    if (out) *out = r;
    return path;
  }
  static CmdResult RunTask(const std::string& intent, const std::string& script) {
    return writd_->Writ(
        {"run", "--agent", kAgent, "--intent", intent, "--", "/bin/sh", "-c", script},
        std::chrono::seconds(30));
  }

  static std::string keys_;
  static SuiteWritd writd_;
};
std::string Bundles::keys_;
SuiteWritd Bundles::writd_;

TEST_F(Bundles, AnAdminPutsASignedBundleInForceWholeAndATaskRunsUnderIt) {
  ASSERT_EQ(RunTask("local", "true").exit_code, 0);
  CmdResult signed_out;
  const std::string b1 =
      Bundle("v1", 1, {{"fleet.yaml", Intent("fleet")}}, "signer.key", &signed_out);
  EXPECT_THAT(signed_out.err, HasSubstr("bundle version 1: 1 files, 1 intents"));
  CmdResult a = writd_->Writ({"policy", "apply", b1});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_THAT(a.out, HasSubstr("policy bundle version 1 in force"));
  EXPECT_THAT(a.out, HasSubstr("1 intents loaded"));
  CmdResult st = writd_->Writ({"status"});
  EXPECT_THAT(st.out, HasSubstr("policy bundle: version 1"));
  EXPECT_THAT(st.out, HasSubstr("signer ci"));
  // The bundle is the whole set: its intent runs, the directory's is gone.
  CmdResult t = RunTask("fleet", "true");
  EXPECT_EQ(t.exit_code, 0) << t.err;
  json start = writd_->WaitForEvent([&](const json& e) {
    return e["kind"] == "task_start" && e["agent"]["task_id"] == TaskIdFrom(t.err);
  });
  EXPECT_EQ(start["agent"].value("intent", ""), "fleet");
  EXPECT_THAT(start["agent"].value("charter", ""), HasSubstr("/bundles/v1-"));
  CmdResult gone = RunTask("local", "true");
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_THAT(gone.err, HasSubstr("local"));
}

TEST_F(Bundles, ABadBundleIsRefusedWithItsReasonAndTheVersionInForceStays) {
  // Signed by a key this writd does not trust.
  const std::string forged =
      Bundle("forged", 5, {{"fleet.yaml", Intent("fleet", "# evil\n")}}, "other.key");
  CmdResult r = writd_->Writ({"policy", "apply", forged});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("bad signature"));
  // A file edited after signing: the same.
  std::string text = Slurp(Bundle("edited", 6, {{"fleet.yaml", Intent("fleet")}}));
  std::ofstream(keys_ + "/edited.bundle") << text.insert(text.find("\"payload\": \"") + 12, "A");
  r = writd_->Writ({"policy", "apply", keys_ + "/edited.bundle"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, Not(HasSubstr("in force (")));
  // An intent that does not load. `writ policy bundle` does not sign it...
  const std::string bdir = keys_ + "/broken";
  std::filesystem::create_directories(bdir);
  std::ofstream(bdir + "/fleet.yaml") << Intent("fleet2");
  std::ofstream(bdir + "/typo.yaml") << Intent("typo", "exek: {}\n");
  r = writd_->Writ({"policy", "bundle", "--key", keys_ + "/signer.key", "--version", "7", "--out",
                    keys_ + "/unsigned.bundle", bdir});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("typo.yaml:"));
  EXPECT_THAT(r.err, HasSubstr("not signed: the set does not load"));
  // ...but a signer with another writd's schema could: writd names the file and line, and applies
  // nothing of the bundle.
  auto env = intent::SignBundle(
      {{"fleet.yaml", Intent("fleet2")}, {"typo.yaml", Intent("typo", "exek: {}\n")}}, 7, "ci",
      Slurp(keys_ + "/signer.key"));
  ASSERT_TRUE(env.ok()) << env.status();
  std::ofstream(keys_ + "/broken.bundle") << *env;
  r = writd_->Writ({"policy", "apply", keys_ + "/broken.bundle"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("bundle v7 does not load"));
  EXPECT_THAT(r.err, HasSubstr("typo.yaml:"));
  // A replay of an older version.
  r = writd_->Writ({"policy", "apply", Bundle("old", 1, {{"old.yaml", Intent("old")}})});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("is not newer than version 1"));

  CmdResult st = writd_->Writ({"status"});
  EXPECT_THAT(st.out, HasSubstr("policy bundle: version 1"));
  EXPECT_THAT(st.out, HasSubstr("policy bundle refused (4 since start)"));
  EXPECT_EQ(RunTask("fleet", "true").exit_code, 0);
  EXPECT_NE(RunTask("fleet2", "true").exit_code, 0);
}

// The agent as attacker: it holds a bundle signed by the trusted key (one an admin left readable)
// and asks writd to put it in force from inside its task.
TEST_F(Bundles, AProcessInsideATaskCannotApplyABundle) {
  const std::string b = Bundle("from-task", 50, {{"open.yaml", Intent("fleet", "# wide open\n")}});
  std::string cmd;
  for (const auto& a : WritInTaskArgv()) absl::StrAppend(&cmd, a, " ");
  absl::StrAppend(&cmd, "--socket ", writd_->socket(), " policy apply ", b, "; sleep 5");
  CmdResult r = RunTask("fleet", cmd);
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;  // the finding ran the task's responses: kill
  json self = writd_->WaitForEvent([&](const json& e) {
    return e["kind"] == "self" && e["agent"]["task_id"] == TaskIdFrom(r.err) &&
           e["syscall"].value("name", "") == "control:apply_policy_bundle";
  });
  EXPECT_FALSE(self.is_null());
  EXPECT_THAT(writd_->Writ({"status"}).out, HasSubstr("policy bundle: version 1"));
}

TEST_F(Bundles, TheBundleInForceOutlivesARestart) {
  const std::string b2 =
      Bundle("v2", 2, {{"fleet.yaml", Intent("fleet")}, {"b.yaml", Intent("b")}});
  ASSERT_EQ(writd_->Writ({"policy", "apply", b2}).exit_code, 0);
  ASSERT_EQ(writd_->Stop(), 0);
  ASSERT_TRUE(writd_->Restart().ok());
  CmdResult st = writd_->Writ({"status"});
  EXPECT_THAT(st.out, HasSubstr("policy bundle: version 2"));
  EXPECT_THAT(st.out, HasSubstr("2 intents loaded"));
  EXPECT_EQ(RunTask("b", "true").exit_code, 0);
  EXPECT_NE(RunTask("local", "true").exit_code, 0);
}

}  // namespace
}  // namespace writ::testlib
