// Signed policy bundles (src/intent/bundle.h): what is signed verifies, and every change an
// attacker can make to an envelope (content, names, version, key, signature) is refused with the
// part that is wrong.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/bundle.h"
#include "nlohmann/json.hpp"
#include "testlib/bundle_keys.h"

namespace writ::intent {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const char kIntent[] =
    "apiVersion: writ.dev/v1\nkind: Intent\nname: docs\nexec:\n  allow: [/usr/bin/cat]\n";

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-bundle-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    pair_ = writ::test_keys::NewKeyPair();
    ASSERT_FALSE(pair_.private_pem.empty());
    auto keys = LoadBundleKeys({Write("signer.pub", pair_.public_pem)});
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *keys;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string Sign(uint64_t version = 3) {
    auto env = SignBundle({{"docs.yaml", kIntent}, {"more.yml", "# nothing\n"}}, version, "ci",
                          pair_.private_pem);
    EXPECT_TRUE(env.ok()) << env.status();
    return env.ok() ? *env : "";
  }
  // The envelope with its payload decoded, changed by `edit`, and encoded again (the signature is
  // left as it was: what an attacker without the key can do).
  static std::string EditPayload(const std::string& env, const std::function<void(json&)>& edit) {
    json e = json::parse(env);
    std::string bytes;
    EXPECT_TRUE(absl::Base64Unescape(e["payload"].get<std::string>(), &bytes));
    json p = json::parse(bytes);
    edit(p);
    e["payload"] = absl::Base64Escape(p.dump());
    return e.dump();
  }

  std::string dir_;
  writ::test_keys::PemPair pair_;
  std::vector<BundleKey> keys_;
};

TEST_F(BundleTest, WhatIsSignedVerifiesWithItsFilesVersionAndKey) {
  const std::string env = Sign(7);
  auto b = VerifyBundle(env, keys_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->version, 7u);
  EXPECT_EQ(b->signer, "ci");
  EXPECT_EQ(b->key_id, keys_[0].key_id);
  EXPECT_EQ(b->key_id.size(), 16u);
  EXPECT_EQ(b->sha256.size(), 64u);
  ASSERT_EQ(b->files.size(), 2u);
  EXPECT_EQ(b->files[0].name, "docs.yaml");
  EXPECT_EQ(b->files[0].content, kIntent);
  EXPECT_FALSE(b->created.empty());
}

TEST_F(BundleTest, AChangedByteAnywhereInThePayloadBreaksTheSignature) {
  const std::string env = Sign();
  for (const auto& edit : std::vector<std::function<void(json&)>>{
           [](json& p) { p["files"][0]["content"] = std::string(kIntent) + "  deny: ['**']\n"; },
           [](json& p) { p["version"] = 99; }, [](json& p) { p["files"].erase(1); },
           [](json& p) { p["signer"] = "someone else"; }}) {
    auto b = VerifyBundle(EditPayload(env, edit), keys_);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(b.status().message(), HasSubstr("bad signature"));
  }
}

TEST_F(BundleTest, AKeyThatIsNotTrustedHereIsRefusedNamingBothKeys) {
  writ::test_keys::PemPair other = writ::test_keys::NewKeyPair();
  auto env = SignBundle({{"docs.yaml", kIntent}}, 1, "", other.private_pem);
  ASSERT_TRUE(env.ok());
  auto b = VerifyBundle(*env, keys_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(b.status().message(), HasSubstr("trusted here: " + keys_[0].key_id));
  // Claiming the trusted key's id does not help: its signature must verify.
  std::string forged = absl::StrReplaceAll(
      *env, {{json::parse(*env)["signatures"][0]["key_id"].get<std::string>(), keys_[0].key_id}});
  EXPECT_EQ(VerifyBundle(forged, keys_).status().code(), absl::StatusCode::kPermissionDenied);
  // No keys at all: nothing verifies.
  EXPECT_EQ(VerifyBundle(Sign(), {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(BundleTest, NamesThatCouldEscapeTheBundleDirectoryAreNeitherSignedNorAccepted) {
  for (const char* bad : {"../x.yaml", "a/b.yaml", ".hidden.yaml", "writd.yaml", "x.sh", "",
                          "x y.yaml", "x.yaml\n"}) {
    EXPECT_FALSE(IsBundleFileName(bad)) << bad;
    EXPECT_FALSE(SignBundle({{bad, kIntent}}, 1, "", pair_.private_pem).ok()) << bad;
  }
  EXPECT_TRUE(IsBundleFileName("mcp-filesystem.yaml"));
  EXPECT_TRUE(IsBundleFileName("a_b.1.json"));
  // Twice the same name, version 0, no files, non-UTF-8 text: refused before signing.
  EXPECT_FALSE(
      SignBundle({{"a.yaml", kIntent}, {"a.yaml", kIntent}}, 1, "", pair_.private_pem).ok());
  EXPECT_FALSE(SignBundle({{"a.yaml", kIntent}}, 0, "", pair_.private_pem).ok());
  EXPECT_FALSE(SignBundle({}, 1, "", pair_.private_pem).ok());
  EXPECT_FALSE(SignBundle({{"a.yaml", "\xff\xfe"}}, 1, "", pair_.private_pem).ok());
}

TEST_F(BundleTest, EnvelopeErrorsSayWhichPartIsWrong) {
  const std::string env = Sign();
  auto message = [&](const std::string& text) {
    auto b = VerifyBundle(text, keys_);
    EXPECT_FALSE(b.ok());
    return std::string(b.status().message());
  };
  EXPECT_THAT(message("{not json"), HasSubstr("not JSON"));
  EXPECT_THAT(message(absl::StrReplaceAll(env, {{"writ.policy-bundle/v1", "v0"}})),
              HasSubstr("format"));
  json e = json::parse(env);
  e["payload"] = "***";
  EXPECT_THAT(message(e.dump()), HasSubstr("payload: not base64"));
  e = json::parse(env);
  e["signatures"] = json::array();
  EXPECT_THAT(message(e.dump()), HasSubstr("signatures: missing"));
  EXPECT_THAT(message(std::string(kBundleMaxBytes + 1, ' ')), HasSubstr("at most"));
}

TEST_F(BundleTest, KeysMustBeEd25519PublicKeysAndErrorsNameTheFile) {
  writ::test_keys::PemPair ec = writ::test_keys::NewKeyPair("EC");
  auto k = LoadBundleKeys({Write("ec.pub", ec.public_pem)});
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(k.status().message(), HasSubstr(dir_ + "/ec.pub: not an Ed25519 key"));
  k = LoadBundleKeys({Write("junk.pub", "hello")});
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(k.status().message(), HasSubstr(dir_ + "/junk.pub: not a PEM public key"));
  EXPECT_FALSE(LoadBundleKeys({dir_ + "/missing.pub"}).ok());
  // Signing with an EC key is refused too.
  EXPECT_FALSE(SignBundle({{"a.yaml", kIntent}}, 1, "", ec.private_pem).ok());
}

}  // namespace
}  // namespace writ::intent
