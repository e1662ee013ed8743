#include <cstdlib>
#include <filesystem>

#include "creds/issuer.h"
#include "gtest/gtest.h"

namespace writ::creds {
namespace {

class IssuerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-issuer-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Reopen();
  }
  void TearDown() override {
    issuer_.reset();
    revocations_.reset();
    keys_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Simulates a daemon restart: every store is reopened from disk.
  void Reopen() {
    issuer_.reset();
    KeyStoreOptions ko;
    ko.state_dir = dir_;
    ko.clock = [this] { return now_; };
    auto ks = KeyStore::Open(ko);
    ASSERT_TRUE(ks.ok()) << ks.status();
    keys_ = std::move(*ks);
    auto rs = RevocationStore::Open(dir_ + "/revoked.db");
    ASSERT_TRUE(rs.ok()) << rs.status();
    revocations_ = std::move(*rs);
    IssuerOptions io;
    io.issuer = "https://writ.local";
    io.clock = [this] { return now_; };
    issuer_ = std::make_unique<Issuer>(io, keys_.get(), revocations_.get());
  }
  TaskClaims Task(const std::string& id) {
    TaskClaims t;
    t.task_id = id;
    t.spiffe_id = "spiffe://example.org/agent/reviewer";
    t.principal_chain = {"user:alice@example.org", "spiffe://example.org/agent/planner"};
    t.intent = "code-review";
    t.deadline = now_ + absl::Hours(1);
    return t;
  }

  std::string dir_;
  absl::Time now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<RevocationStore> revocations_;
  std::unique_ptr<Issuer> issuer_;
};

TEST_F(IssuerTest, MintCarriesAllClaims) {
  auto svid = issuer_->Mint(Task("t1"), {"https://api.example.org", "db"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  auto c = issuer_->Verify(svid->token);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)["iss"], "https://writ.local");
  EXPECT_EQ((*c)["sub"], "spiffe://example.org/agent/reviewer");
  EXPECT_EQ((*c)["aud"], nlohmann::json({"https://api.example.org", "db"}));
  EXPECT_EQ((*c)["iat"], absl::ToUnixSeconds(now_));
  EXPECT_EQ((*c)["exp"], absl::ToUnixSeconds(now_ + absl::Minutes(5)));
  EXPECT_EQ((*c)["writ_task"], "t1");
  EXPECT_EQ((*c)["scope"], "code-review");
  EXPECT_EQ((*c)["jti"], svid->jti);
  EXPECT_EQ(Base64UrlDecode(svid->jti)->size(), 16u);
  // Outermost actor = most recent delegate.
  EXPECT_EQ((*c)["act"]["sub"], "spiffe://example.org/agent/planner");
  EXPECT_EQ((*c)["act"]["act"]["sub"], "user:alice@example.org");
  EXPECT_FALSE((*c)["act"]["act"].contains("act"));
  auto other = issuer_->Mint(Task("t1"), {"db"});
  EXPECT_NE(other->jti, svid->jti);
}

TEST_F(IssuerTest, ExpiryCappedByDeadlineAndPastDeadlineRefused) {
  TaskClaims t = Task("t2");
  t.deadline = now_ + absl::Seconds(30);
  auto svid = issuer_->Mint(t, {"db"});
  ASSERT_TRUE(svid.ok());
  EXPECT_EQ(svid->expires_at, now_ + absl::Seconds(30));
  t.deadline = now_;
  auto late = issuer_->Mint(t, {"db"});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(IssuerTest, AudienceValidation) {
  struct Case {
    std::vector<std::string> aud;
    std::string want;
  } cases[] = {
      {{}, "at least one"},
      {std::vector<std::string>(9, "a"), "at most 8"},
      {{"ok", std::string(257, 'a')}, "audience[1]: 257 bytes"},
      {{"has space"}, "audience[0]: byte 0x20"},
      {{"tab\t"}, "audience[0]: byte 0x9"},
      {{""}, "audience[0]: empty"},
  };
  for (const auto& c : cases) {
    auto s = issuer_->Mint(Task("t"), c.aud);
    ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << c.want;
    EXPECT_NE(s.status().message().find(c.want), std::string::npos)
        << s.status() << " want " << c.want;
  }
  EXPECT_TRUE(issuer_->Mint(Task("t"), std::vector<std::string>(8, std::string(256, '~'))).ok());
}

TEST_F(IssuerTest, IntrospectActiveThenExpired) {
  auto svid = issuer_->Mint(Task("t3"), {"db"});
  auto r = issuer_->Introspect(svid->token);
  EXPECT_EQ(r["active"], true);
  EXPECT_EQ(r["token_type"], "Bearer");
  for (const char* k : {"sub", "aud", "exp", "iat", "jti", "iss", "scope", "act", "writ_task"}) {
    EXPECT_TRUE(r.contains(k)) << k;
  }
  now_ += absl::Minutes(5);
  EXPECT_EQ(issuer_->Introspect(svid->token), nlohmann::json({{"active", false}}));
}

TEST_F(IssuerTest, BadSignatureAndForeignIssuerInactive) {
  auto svid = issuer_->Mint(Task("t4"), {"db"});
  std::string bad = svid->token;
  bad[bad.size() - 5] = bad[bad.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(issuer_->Introspect(bad)["active"], false);
  EXPECT_EQ(issuer_->Introspect("garbage")["active"], false);
  // Signed by our current key but claiming another issuer.
  auto key = keys_->Current();
  auto forged =
      SignJwt({{"iss", "https://evil"}, {"exp", absl::ToUnixSeconds(now_) + 60}, {"jti", "x"}},
              *key->key, key->kid);
  EXPECT_EQ(issuer_->Introspect(*forged)["active"], false);
}

TEST_F(IssuerTest, RevokeTaskSurvivesRestartAndBlocksMint) {
  auto a = issuer_->Mint(Task("t5"), {"db"});
  auto b = issuer_->Mint(Task("t5"), {"db"});
  auto other = issuer_->Mint(Task("t6"), {"db"});
  auto jtis = issuer_->Revoke("t5", "violation");
  ASSERT_TRUE(jtis.ok()) << jtis.status();
  EXPECT_EQ(std::set<std::string>(jtis->begin(), jtis->end()),
            (std::set<std::string>{a->jti, b->jti}));
  Reopen();
  EXPECT_EQ(issuer_->Introspect(a->token)["active"], false);
  EXPECT_EQ(issuer_->Introspect(b->token)["active"], false);
  EXPECT_EQ(issuer_->Introspect(other->token)["active"], true);
  EXPECT_EQ(issuer_->Mint(Task("t5"), {"db"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Second revoke: nothing new.
  EXPECT_TRUE(issuer_->Revoke("t5", "again")->empty());
}

TEST_F(IssuerTest, MarkRevokedIsImmediateAndRevokeMakesItDurable) {
  auto a = issuer_->Mint(Task("t7"), {"db"});
  ASSERT_TRUE(a.ok());
  issuer_->MarkRevoked("t7");  // the violation fast path: memory only
  EXPECT_EQ(issuer_->Introspect(a->token)["active"], false);
  EXPECT_EQ(issuer_->Mint(Task("t7"), {"db"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Reopen();  // a mark alone is not durable (a crash before Revoke loses it: docs/credentials.md)
  EXPECT_EQ(issuer_->Introspect(a->token)["active"], true);
  issuer_->MarkRevoked("t7");
  auto jtis = issuer_->Revoke("t7", "violation");  // the durable record still names the live token
  ASSERT_TRUE(jtis.ok());
  EXPECT_EQ(*jtis, std::vector<std::string>{a->jti});
  Reopen();
  EXPECT_EQ(issuer_->Introspect(a->token)["active"], false);
}

TEST_F(IssuerTest, RevokeSingleTokenRfc7009) {
  auto a = issuer_->Mint(Task("t7"), {"db"});
  auto b = issuer_->Mint(Task("t7"), {"db"});
  auto jti = issuer_->RevokeToken(a->token, "client");
  ASSERT_TRUE(jti.ok());
  EXPECT_EQ(*jti, a->jti);
  EXPECT_EQ(issuer_->Introspect(a->token)["active"], false);
  EXPECT_EQ(issuer_->Introspect(b->token)["active"], true);
  EXPECT_EQ(*issuer_->RevokeToken("not-a-token", "x"), "");
}

TEST_F(IssuerTest, ValidateChecksAudience) {
  auto a = issuer_->Mint(Task("t8"), {"db", "api"});
  EXPECT_TRUE(issuer_->Validate(a->token, "api").ok());
  EXPECT_EQ(issuer_->Validate(a->token, "other").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(IssuerTest, OldKeyTokensVerifyAfterRotation) {
  auto a = issuer_->Mint(Task("t9"), {"db"});
  ASSERT_TRUE(keys_->Rotate().ok());
  auto b = issuer_->Mint(Task("t9"), {"db"});
  EXPECT_NE(a->kid, b->kid);
  EXPECT_TRUE(issuer_->Verify(a->token).ok());
  EXPECT_TRUE(issuer_->Verify(b->token).ok());
}

TEST(ActClaim, EmptyAndSingle) {
  EXPECT_TRUE(ActClaim({}).is_null());
  EXPECT_EQ(ActClaim({"user:a"}), nlohmann::json({{"sub", "user:a"}}));
}

}  // namespace
}  // namespace writ::creds
