// daemon/task_credentials: an intent's provider credentials issued through a real CredentialService
// (webhook: issues without the network; postgres at a socket that does not exist: Unavailable at
// once), written as the task's 0400 file in a 0500 directory, `required` failing the start and
// undoing what was issued, optional failures reported as issue_failed, revocation removing the
// files.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/synchronization/mutex.h"
#include "daemon/task_credentials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace writ::daemon {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

v1::CredentialRequest Req(const std::string& provider, int required = -1) {
  v1::CredentialRequest r;
  r.set_provider(provider);
  if (required >= 0) r.set_required(required == 1);
  return r;
}

class TaskCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-taskcreds-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    creds::CredentialConfig cc;
    cc.state_dir = dir_ + "/state";
    cc.run_dir = dir_ + "/run";
    cc.trust_domain = "example.org";
    cc.http_addr = "";
    // Port 9 (discard) on loopback: nothing listens, so the webhook revocation stays queued.
    cc.providers = {{"hook", "webhook", {{"url", "http://127.0.0.1:9/caep"}}, {}},
                    {"pg",
                     "postgres",
                     {{"conninfo", "host=" + dir_ + "/nosuch port=5 connect_timeout=1"}},
                     {}}};
    auto svc = creds::CredentialService::Start(cc);
    ASSERT_TRUE(svc.ok()) << svc.status();
    svc_ = std::move(*svc);
    svc_->SetEventHook([this](const creds::CredentialEvent& e) { Record(e); });
    tc_ = std::make_unique<TaskCredentials>(svc_.get(), dir_ + "/run",
                                            [this](const creds::CredentialEvent& e) { Record(e); });
    claims_ = {"t-abc123",
               "spiffe://example.org/agent/x",
               {"user:alice"},
               "db-reader",
               absl::Now() + absl::Hours(1)};
  }
  void TearDown() override {
    tc_.reset();
    if (svc_) svc_->Stop();
    std::filesystem::remove_all(dir_);
  }
  void Record(const creds::CredentialEvent& e) {
    absl::MutexLock l(&mu_);
    events_.push_back(e);
  }
  std::vector<creds::CredentialEvent> Events(const std::string& op) {
    absl::MutexLock l(&mu_);
    std::vector<creds::CredentialEvent> out;
    for (const auto& e : events_) {
      if (e.operation == op) out.push_back(e);
    }
    return out;
  }

  std::string dir_;
  std::unique_ptr<creds::CredentialService> svc_;
  std::unique_ptr<TaskCredentials> tc_;
  creds::TaskClaims claims_;
  absl::Mutex mu_;
  std::vector<creds::CredentialEvent> events_;
};

TEST_F(TaskCredentialsTest, WritesTheTasksOwnFileAndRevokeRemovesIt) {
  ASSERT_TRUE(tc_->Issue(claims_, getuid(), getgid(), {Req("hook")}).ok());
  const std::string d = tc_->DirFor("t-abc123");
  EXPECT_EQ(d, dir_ + "/run/credentials/t-abc123");
  struct stat st {};
  ASSERT_EQ(stat((d + "/hook").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_EQ(st.st_uid, getuid());
  ASSERT_EQ(stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0500u);
  ASSERT_EQ(stat((dir_ + "/run/credentials").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  std::string body = Slurp(d + "/hook");
  EXPECT_THAT(
      body,
      HasSubstr("provider=hook\ntype=webhook\nid=http://127.0.0.1:9/caep\nsecret=\nexpires="));
  auto issued = Events("issue");
  ASSERT_EQ(issued.size(), 1u);
  EXPECT_EQ(issued[0].provider, "hook");
  EXPECT_EQ(issued[0].task_id, "t-abc123");

  EXPECT_TRUE(tc_->Revoke("t-abc123", "violation").ok());  // queued in the outbox counts as done
  EXPECT_FALSE(std::filesystem::exists(d));
  ASSERT_EQ(Events("revoke_queued").size(), 1u);
  EXPECT_EQ(*svc_->OutboxDepth(), 1);  // nobody listens on :9; it stays queued, nothing lost
  EXPECT_TRUE(tc_->Revoke("t-abc123", "task ended").ok());  // idempotent
}

TEST_F(TaskCredentialsTest, RequiredFailureUndoesEverythingAndNamesTheProvider) {
  absl::Status st = tc_->Issue(claims_, getuid(), getgid(), {Req("hook"), Req("pg")});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("credential from provider 'pg' (required by intent db-reader)"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("connect"));
  EXPECT_FALSE(std::filesystem::exists(tc_->DirFor("t-abc123")));
  // The webhook credential that was issued is revoked; PostgreSQL was never reached: nothing queued
  // there.
  auto queued = Events("revoke_queued");
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].provider, "hook");
  EXPECT_EQ(*svc_->OutboxDepth(), 1);
  // The task's JWT-SVIDs are revoked too: it never started.
  EXPECT_FALSE(svc_->Mint(claims_, {"aud"}).ok());
}

TEST_F(TaskCredentialsTest, OptionalFailureWarnsAndTheTaskStartsWithTheRest) {
  ASSERT_TRUE(tc_->Issue(claims_, getuid(), getgid(), {Req("pg", 0), Req("hook", 1)}).ok());
  auto failed = Events("issue_failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].provider, "pg");
  EXPECT_EQ(failed[0].type, "postgres_role");
  EXPECT_THAT(failed[0].detail, HasSubstr("connect"));
  EXPECT_FALSE(std::filesystem::exists(tc_->DirFor("t-abc123") + "/pg"));
  EXPECT_TRUE(std::filesystem::exists(tc_->DirFor("t-abc123") + "/hook"));
  EXPECT_EQ(*svc_->OutboxDepth(), 0);
}

TEST_F(TaskCredentialsTest, NoRequestsNoDirectory) {
  ASSERT_TRUE(tc_->Issue(claims_, getuid(), getgid(), {}).ok());
  EXPECT_FALSE(std::filesystem::exists(tc_->DirFor("t-abc123")));
}

TEST(TaskCredentialsFormat, OneKeyPerLine) {
  creds::IssuedCredential c{"pg", "postgres_role", "writ_t_1_ab", "s3cr3t",
                            absl::FromUnixSeconds(1764325300)};
  EXPECT_THAT(
      TaskCredentials::Format(c),
      ::testing::MatchesRegex("provider=pg\ntype=postgres_role\nid=writ_t_1_ab\nsecret=s3cr3t\n"
                              "expires=2025-11-28T10:21:40(\\.0+)?Z\n"));
}

}  // namespace
}  // namespace writ::daemon
