// The CredentialService facade end to end in-process: HTTP endpoints, Workload API, events,
// external revocation through the outbox (webhook receiver), restart persistence, config errors.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>

#include "creds/creds.h"
#include "creds/sqlite.h"
#include "gtest/gtest.h"
#include "http/client.h"
#include "writ/v1/workload.grpc.pb.h"

namespace writ::creds {
namespace {

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-svc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    rx_ = std::move(*http::Server::Create({}));
    rx_->AddRoute("POST", "/caep", [this](const http::Request& r) {
      absl::MutexLock l(&mu_);
      webhook_bodies_.push_back(r.body);
      return http::Response{webhook_status_, "text/plain", ""};
    });
    ASSERT_TRUE(rx_->Start().ok());
  }
  void TearDown() override {
    svc_.reset();
    rx_->Stop();
    std::filesystem::remove_all(dir_);
  }
  CredentialConfig Config() {
    CredentialConfig c;
    c.state_dir = dir_ + "/state";
    c.run_dir = dir_ + "/run";
    c.trust_domain = "example.org";
    c.http_addr = "127.0.0.1:0";
    c.maintenance_period = absl::Milliseconds(100);
    c.providers = {{"hook",
                    "webhook",
                    {{"url", "http://127.0.0.1:" + std::to_string(rx_->port()) + "/caep"}},
                    {}}};
    c.task_lookup = [](pid_t pid, uint64_t, const std::string&) -> std::optional<TaskClaims> {
      if (pid != getpid()) return std::nullopt;
      return TaskClaims{"task-s",
                        "spiffe://example.org/agent/s",
                        {"user:bob@x"},
                        "ops",
                        absl::Now() + absl::Hours(1)};
    };
    return c;
  }
  void StartService() {
    auto s = CredentialService::Start(Config());
    ASSERT_TRUE(s.ok()) << s.status();
    svc_ = std::move(*s);
    svc_->SetEventHook([this](const CredentialEvent& e) {
      absl::MutexLock l(&mu_);
      events_.push_back(e);
    });
  }
  std::vector<CredentialEvent> Events() {
    absl::MutexLock l(&mu_);
    return events_;
  }
  bool WaitFor(std::function<bool()> cond, absl::Duration bound = absl::Seconds(5)) {
    absl::Time deadline = absl::Now() + bound;
    while (!cond()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  std::string dir_;
  std::unique_ptr<http::Server> rx_;
  std::unique_ptr<CredentialService> svc_;
  absl::Mutex mu_;
  std::vector<std::string> webhook_bodies_;
  int webhook_status_ ABSL_GUARDED_BY(mu_) = 200;
  std::vector<CredentialEvent> events_;
};

TEST_F(ServiceTest, WorkloadFetchThenRevokeEverywhere) {
  StartService();
  auto stub = ::SpiffeWorkloadAPI::SpiffeWorkloadAPI::NewStub(grpc::CreateChannel(
      "unix:" + dir_ + "/run/workload.sock", grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("workload.spiffe.io", "true");
  ::SpiffeWorkloadAPI::JWTSVIDRequest req;
  req.add_audience("db");
  ::SpiffeWorkloadAPI::JWTSVIDResponse resp;
  ASSERT_TRUE(stub->FetchJWTSVID(&ctx, req, &resp).ok());
  std::string token = resp.svids(0).svid();

  auto creds = svc_->OnTaskStart(
      TaskClaims{"task-s", "spiffe://example.org/agent/s", {}, "ops", absl::Now() + absl::Hours(1)},
      {{"hook", "", {}, {}}});
  ASSERT_TRUE(creds.ok()) << creds.status();
  ASSERT_EQ(creds->size(), 1u);

  // Introspection over HTTP says active.
  http::ClientRequest ir;
  ir.method = "POST";
  ir.url = svc_->http_base_url() + "/introspect";
  ir.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  ir.body = "token=" + token;
  EXPECT_EQ(nlohmann::json::parse(http::Fetch(ir)->body)["active"], true);

  auto jtis = svc_->Revoke("task-s", "violation");
  ASSERT_TRUE(jtis.ok()) << jtis.status();
  ASSERT_EQ(jtis->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(http::Fetch(ir)->body)["active"], false);
  EXPECT_EQ(nlohmann::json::parse(svc_->Introspect(token))["active"], false);
  // The webhook got its CAEP event via the outbox thread, and the outbox drained.
  ASSERT_TRUE(WaitFor([&] { return *svc_->OutboxDepth() == 0 && !webhook_bodies_.empty(); }));
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : Events())
      if (e.operation == "revoke" && e.provider == "hook") return true;
    return false;
  }));
  auto ev = Events();
  auto has = [&](const std::string& type, const std::string& op, const std::string& jti) {
    for (const auto& e : ev)
      if (e.type == type && e.operation == op && (jti.empty() || e.jti == jti)) return true;
    return false;
  };
  EXPECT_TRUE(has("jwt_svid", "issue", (*jtis)[0]));
  EXPECT_TRUE(has("jwt_svid", "revoke", (*jtis)[0]));
  EXPECT_TRUE(has("webhook", "issue", ""));
  EXPECT_TRUE(has("webhook", "revoke_queued", ""));
  EXPECT_TRUE(has("webhook", "revoke", ""));

  // After a restart the token stays revoked and the same signing key is served.
  std::string jwks = svc_->JwksJson();
  svc_.reset();
  StartService();
  EXPECT_EQ(nlohmann::json::parse(svc_->Introspect(token))["active"], false);
  EXPECT_EQ(svc_->JwksJson(), jwks);
  // A second revoke notifies nobody again (nothing recorded for the task any more).
  EXPECT_TRUE(svc_->Revoke("task-s", "again")->empty());
  EXPECT_EQ(*svc_->OutboxDepth(), 0);
}

// The JWT-SVID revocation record cannot be written (here: its table is gone): Revoke says so, yet
// the task's token is inactive at once and the external provider is still told through the outbox.
TEST_F(ServiceTest, FailedJwtRecordStillRevokesAtProviders) {
  StartService();
  const TaskClaims claims{
      "task-f", "spiffe://example.org/agent/f", {}, "ops", absl::Now() + absl::Hours(1)};
  auto svid = svc_->Mint(claims, {"db"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  ASSERT_TRUE(svc_->OnTaskStart(claims, {{"hook", "", {}, {}}}).ok());
  {
    auto db = SqliteDb::Open(dir_ + "/state/revoked.db");
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("DROP TABLE revoked_task").ok());
  }
  auto jtis = svc_->Revoke("task-f", "violation");
  EXPECT_FALSE(jtis.ok());
  EXPECT_NE(jtis.status().message().find("revoked_task"), std::string::npos) << jtis.status();
  EXPECT_EQ(nlohmann::json::parse(svc_->Introspect(svid->token))["active"], false);
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock l(&mu_);
    return !webhook_bodies_.empty();
  }));
  EXPECT_TRUE(WaitFor([&] { return *svc_->OutboxDepth() == 0; }));
  bool queued = false;
  for (const auto& e : Events())
    queued = queued || (e.provider == "hook" && e.operation == "revoke_queued");
  EXPECT_TRUE(queued);
}

TEST_F(ServiceTest, FailingRevocationIsCountedAndReportedOnceOverdue) {
  {
    absl::MutexLock l(&mu_);
    webhook_status_ = 503;
  }
  CredentialConfig c = Config();
  c.revocation_alert_after = absl::Milliseconds(300);
  auto s = CredentialService::Start(c);
  ASSERT_TRUE(s.ok()) << s.status();
  svc_ = std::move(*s);
  svc_->SetEventHook([this](const CredentialEvent& e) {
    absl::MutexLock l(&mu_);
    events_.push_back(e);
  });
  auto health = svc_->FailingRevocations();
  ASSERT_TRUE(health.ok()) << health.status();
  ASSERT_EQ(health->size(), 1u);  // every configured provider, healthy ones too
  EXPECT_EQ((*health)[0].provider, "hook");
  EXPECT_EQ((*health)[0].failing, 0);

  const TaskClaims claims{
      "task-o", "spiffe://example.org/agent/o", {}, "ops", absl::Now() + absl::Hours(1)};
  ASSERT_TRUE(svc_->OnTaskStart(claims, {{"hook", "", {}, {}}}).ok());
  ASSERT_TRUE(svc_->Revoke("task-o", "violation").ok());
  auto count = [&](const std::string& op) {
    int n = 0;
    for (const auto& e : Events()) n += e.task_id == "task-o" && e.operation == op;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return count("revoke_overdue") > 0; }, absl::Seconds(10)));
  health = svc_->FailingRevocations();
  ASSERT_TRUE(health.ok());
  EXPECT_EQ((*health)[0].failing, 1);
  EXPECT_GE((*health)[0].oldest_age, absl::Milliseconds(300));
  for (const auto& e : Events()) {
    if (e.operation != "revoke_overdue") continue;
    EXPECT_EQ(e.provider, "hook");
    EXPECT_EQ(e.type, "webhook");
    EXPECT_NE(e.detail.find("(violation)"), std::string::npos) << e.detail;
    EXPECT_NE(e.detail.find("HTTP 503"), std::string::npos) << e.detail;
  }
  // The provider recovers: the revocation is acknowledged, nothing fails, and the report stayed
  // single.
  {
    absl::MutexLock l(&mu_);
    webhook_status_ = 200;
  }
  ASSERT_TRUE(WaitFor([&] { return *svc_->OutboxDepth() == 0; }, absl::Seconds(15)));
  // The outbox deletes the row, then reports the result: the event follows the depth by a moment.
  ASSERT_TRUE(WaitFor([&] { return count("revoke") > 0; }, absl::Seconds(5)));
  EXPECT_EQ(svc_->FailingRevocations()->at(0).failing, 0);
  EXPECT_GE(count("revoke_failed"), 1);
  EXPECT_EQ(count("revoke_overdue"), 1);
  EXPECT_EQ(count("revoke"), 1);
}

TEST_F(ServiceTest, ConfigErrors) {
  CredentialConfig c = Config();
  c.trust_domain = "spiffe://example.org";
  auto s = CredentialService::Start(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("trust_domain"), std::string::npos);
  c = Config();
  c.providers.push_back(c.providers[0]);
  s = CredentialService::Start(c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("'hook' is used twice"), std::string::npos) << s.status();
  c = Config();
  c.http_addr = "10.0.0.1:80";
  EXPECT_FALSE(CredentialService::Start(c).ok());
  StartService();
  auto r =
      svc_->OnTaskStart(TaskClaims{"t", "spiffe://example.org/a", {}, "i"}, {{"nope", "", {}, {}}});
  EXPECT_NE(r.status().message().find("provider 'nope' is not configured"), std::string::npos);
}

}  // namespace
}  // namespace writ::creds
