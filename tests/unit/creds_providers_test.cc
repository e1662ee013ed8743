// Vault and webhook providers against in-process HTTP receivers; the durable outbox with a scripted
// provider (fails, then succeeds; survives reopen; failing counts and the once-only overdue
// report).
#include <filesystem>

#include "absl/strings/ascii.h"
#include "creds/outbox.h"
#include "creds/provider.h"
#include "creds/sqlite.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "nlohmann/json.hpp"
#include "tls_test_server.h"

namespace writ::creds {
namespace {

struct Receiver {
  Receiver() {
    server = std::move(*http::Server::Create({}));
    EXPECT_TRUE(server->Start().ok());
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
  std::unique_ptr<http::Server> server;
  absl::Mutex mu;
  std::vector<http::Request> seen;
  int status = 204;
};

TEST(VaultProvider, RevokesLeasePrefixWithToken) {
  Receiver rx;
  rx.server->AddRoute("PUT", "/v1/sys/leases/revoke-prefix/database/creds/task-1/",
                      [&](const http::Request& r) {
                        absl::MutexLock l(&rx.mu);
                        rx.seen.push_back(r);
                        return http::Response{rx.status, "application/json", ""};
                      });
  ProviderConfig c{
      "vault-main",
      "vault",
      {{"addr", rx.base() + "/"}, {"token", "s.secret"}, {"prefix", "database/creds/{task}/"}},
      {}};
  auto p = MakeProvider(c);
  ASSERT_TRUE(p.ok()) << p.status();
  auto cred = (*p)->Issue({"task-1", "spiffe://e/a", {}, "i", absl::Now() + absl::Hours(1)}, c);
  ASSERT_TRUE(cred.ok());
  EXPECT_EQ(cred->id, "database/creds/task-1/");
  EXPECT_TRUE((*p)->Revoke("task-1", "violation").ok());
  {
    absl::MutexLock l(&rx.mu);
    ASSERT_EQ(rx.seen.size(), 1u);
    EXPECT_EQ(rx.seen[0].Header("x-vault-token"), "s.secret");
    rx.status = 403;
  }
  auto st = (*p)->Revoke("task-1", "violation");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("HTTP 403"), std::string::npos) << st;
  // Another task's prefix is not routed: 404 is a failure, not a silent success.
  EXPECT_FALSE((*p)->Revoke("task-2", "x").ok());
}

// Vault over https: params.ca_file names the CA the server must chain to; without it the system
// store is used, which refuses a private CA (the revocation fails and stays in the outbox).
TEST(VaultProvider, HttpsVerifiesAgainstCaFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("writ-vault-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  writ::testing::TestPki pki(dir.string(), "vault");
  writ::testing::TlsTestServer srv(pki.Issue("vault", "localhost", {"IP:127.0.0.1"}),
                                   writ::testing::TlsTestServer::Mode::kHttp,
                                   "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
  const std::string addr = "https://127.0.0.1:" + std::to_string(srv.port());
  ProviderConfig c{
      "vault-tls",
      "vault",
      {{"addr", addr}, {"token", "s.t"}, {"prefix", "db/{task}/"}, {"ca_file", pki.ca().cert}},
      {}};
  auto p = MakeProvider(c);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE((*p)->Revoke("task-9", "done").ok());
  ASSERT_EQ(srv.requests().size(), 1u);
  EXPECT_EQ(srv.requests()[0].rfind("PUT /v1/sys/leases/revoke-prefix/db/task-9/ HTTP/1.1\r\n", 0),
            0u);
  c.params.erase("ca_file");
  auto p2 = MakeProvider(c);
  ASSERT_TRUE(p2.ok());
  auto st = (*p2)->Revoke("task-9", "done");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("certificate verify failed"), std::string::npos) << st;
  EXPECT_EQ(srv.requests().size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(WebhookProvider, PostsCaepSessionRevoked) {
  Receiver rx;
  rx.server->AddRoute("POST", "/caep", [&](const http::Request& r) {
    absl::MutexLock l(&rx.mu);
    rx.seen.push_back(r);
    return http::Response{202, "text/plain", ""};
  });
  ProviderConfig c{
      "hook", "webhook", {{"url", rx.base() + "/caep"}, {"issuer", "https://writ.local"}}, {}};
  auto p = MakeProvider(c);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Revoke("task-7", "deadline").ok());
  absl::MutexLock l(&rx.mu);
  ASSERT_EQ(rx.seen.size(), 1u);
  auto j = nlohmann::json::parse(rx.seen[0].body);
  EXPECT_EQ(j["iss"], "https://writ.local");
  EXPECT_EQ(j["sub_id"]["id"], "task-7");
  auto ev = j["events"]["https://schemas.openid.net/secevent/caep/event-type/session-revoked"];
  EXPECT_EQ(ev["subject"]["id"], "task-7");
  EXPECT_EQ(ev["reason_admin"]["en"], "deadline");
  EXPECT_TRUE(ev["event_timestamp"].is_number_integer());
}

TEST(MakeProvider, ConfigErrorsNameProviderAndField) {
  auto p = MakeProvider({"v", "vault", {{"addr", "http://x"}}, {}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("provider 'v' (vault): params.token is required"),
            std::string::npos)
      << p.status();
  p = MakeProvider({"x", "ldap", {}, {}});
  EXPECT_NE(p.status().message().find("type 'ldap'"), std::string::npos);
  p = MakeProvider({"pg", "postgres", {{"conninfo", "host=/tmp"}}, {"SELECT ON t; DROP TABLE x"}});
  EXPECT_NE(p.status().message().find("grant"), std::string::npos);
  p = MakeProvider({"pg", "postgres", {{"conninfo", "host=/tmp"}}, {"SELECT ON t TO PUBLIC"}});
  EXPECT_FALSE(p.ok());
}

TEST(PostgresRoleName, SanitizedUniqueBounded) {
  std::string a = PostgresRoleName("writ_", "Task-1");
  std::string b = PostgresRoleName("writ_", "task_1");
  EXPECT_EQ(a.rfind("writ_task_1_", 0), 0u) << a;
  EXPECT_NE(a, b);  // same sanitized form, different ids
  EXPECT_LE(PostgresRoleName("writ_", std::string(300, 'x')).size(), 63u);
  for (char c : a) EXPECT_TRUE(absl::ascii_isalnum(c) || c == '_') << a;
}

class ScriptedProvider : public CredentialProvider {
 public:
  explicit ScriptedProvider(std::string name) : config_{std::move(name), "scripted", {}, {}} {}
  const ProviderConfig& config() const override { return config_; }
  absl::StatusOr<IssuedCredential> Issue(const TaskClaims&, const ProviderConfig&) override {
    return IssuedCredential{};
  }
  absl::Status Revoke(const std::string& task_id, const std::string&) override {
    calls.push_back(task_id);
    if (failures_left > 0) {
      --failures_left;
      return absl::UnavailableError("down");
    }
    return absl::OkStatus();
  }
  ProviderConfig config_;
  int failures_left = 0;
  std::vector<std::string> calls;
};

TEST(Outbox, RetriesWithBackoffAndSurvivesRestart) {
  char tmpl[] = "/tmp/writ-outbox-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  OutboxOptions o;
  o.path = dir + "/outbox.db";
  o.base_backoff = absl::Seconds(1);
  o.max_backoff = absl::Seconds(4);
  o.jitter = 0;
  o.clock = [&] { return now; };
  ScriptedProvider p("pg");
  p.failures_left = 4;
  std::vector<OutboxResult> results;
  {
    auto ob = Outbox::Open(o);
    ASSERT_TRUE(ob.ok()) << ob.status();
    (*ob)->Register(&p);
    (*ob)->SetResultHook([&](const OutboxResult& r) { results.push_back(r); });
    ASSERT_TRUE((*ob)->Enqueue("pg", "t1", "ended").ok());
    ASSERT_TRUE((*ob)->Enqueue("pg", "t1", "ended").ok());  // dedup
    EXPECT_EQ(*(*ob)->Depth(), 1);
    EXPECT_EQ(*(*ob)->RunOnce(), 0);  // attempt 1 fails -> +1s
    EXPECT_EQ(*(*ob)->RunOnce(), 0);  // not due: no call
    EXPECT_EQ(p.calls.size(), 1u);
    now += absl::Seconds(1);
    EXPECT_EQ(*(*ob)->RunOnce(), 0);  // attempt 2 fails -> +2s
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[1].next_attempt, now + absl::Seconds(2));
    now += absl::Seconds(2);
    EXPECT_EQ(*(*ob)->RunOnce(), 0);  // attempt 3 -> +4s
    now += absl::Seconds(4);
    EXPECT_EQ(*(*ob)->RunOnce(), 0);  // attempt 4 -> capped at 4s
    EXPECT_EQ(results.back().next_attempt, now + absl::Seconds(4));
  }
  // Restart: the entry is still there and is retried until acknowledged.
  auto ob = Outbox::Open(o);
  ASSERT_TRUE(ob.ok());
  EXPECT_EQ(*(*ob)->Depth(), 1);
  EXPECT_EQ(*(*ob)->RunOnce(), 0);  // provider not registered yet: still not due anyway
  now += absl::Seconds(4);
  EXPECT_EQ(*(*ob)->RunOnce(), 0);  // due, but provider unknown -> stays, backs off
  EXPECT_EQ(*(*ob)->Depth(), 1);
  (*ob)->Register(&p);
  now += absl::Seconds(5);
  EXPECT_EQ(*(*ob)->RunOnce(), 1);
  EXPECT_EQ(*(*ob)->Depth(), 0);
  EXPECT_EQ(p.calls.size(), 5u);
  std::filesystem::remove_all(dir);
}

TEST(Outbox, BackgroundThreadDeliversPromptly) {
  char tmpl[] = "/tmp/writ-outbox-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  OutboxOptions o;
  o.path = dir + "/outbox.db";
  o.poll = absl::Seconds(10);  // so only Wake() can explain a prompt delivery
  auto ob = std::move(*Outbox::Open(o));
  ScriptedProvider p("hook");
  ob->Register(&p);
  ob->Start();
  ASSERT_TRUE(ob->Enqueue("hook", "t2", "violation").ok());
  absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (*ob->Depth() != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(*ob->Depth(), 0);
  ob->Stop();
  EXPECT_EQ(p.calls, std::vector<std::string>{"t2"});
  std::filesystem::remove_all(dir);
}

TEST(Outbox, FailingRevocationsPerProviderAndOverdueReportedOnce) {
  char tmpl[] = "/tmp/writ-outbox-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  absl::Time now = t0;
  OutboxOptions o;
  o.path = dir + "/outbox.db";
  o.jitter = 0;
  o.overdue_after = absl::Minutes(5);
  o.clock = [&] { return now; };
  ScriptedProvider pg("pg"), hook("hook");
  pg.failures_left = 1000;
  std::vector<OverdueRevocation> overdue;
  {
    auto ob = std::move(*Outbox::Open(o));
    ob->Register(&pg);
    ob->Register(&hook);
    ob->SetOverdueHook([&](const OverdueRevocation& r) { overdue.push_back(r); });
    ASSERT_TRUE(ob->Enqueue("pg", "t1", "violation").ok());
    ASSERT_TRUE(ob->Enqueue("hook", "t1", "violation").ok());
    now += absl::Seconds(30);
    ASSERT_TRUE(ob->Enqueue("pg", "t2", "task_ended").ok());
    // Queued but never attempted is pending, not failing.
    EXPECT_TRUE(ob->Failing()->empty());
    EXPECT_EQ(*ob->RunOnce(), 1);  // hook acknowledges; both pg revocations fail
    auto failing = ob->Failing();
    ASSERT_TRUE(failing.ok()) << failing.status();
    ASSERT_EQ(failing->size(), 1u);
    EXPECT_EQ((*failing)[0].provider, "pg");
    EXPECT_EQ((*failing)[0].count, 2);
    EXPECT_EQ((*failing)[0].oldest_queued, t0);

    now = t0 + absl::Minutes(5) - absl::Seconds(1);
    EXPECT_EQ(*ob->SignalOverdue(), 0);
    EXPECT_TRUE(overdue.empty());
    now = t0 + absl::Minutes(5);  // t1 is overdue, t2 (queued 30 s later) is not yet
    EXPECT_EQ(*ob->SignalOverdue(), 1);
    ASSERT_EQ(overdue.size(), 1u);
    EXPECT_EQ(overdue[0].provider, "pg");
    EXPECT_EQ(overdue[0].task_id, "t1");
    EXPECT_EQ(overdue[0].reason, "violation");
    EXPECT_EQ(overdue[0].queued, t0);
    EXPECT_EQ(overdue[0].attempts, 1);
    EXPECT_EQ(overdue[0].last_error, "down");
    EXPECT_EQ(*ob->SignalOverdue(), 0);  // once
    now += absl::Minutes(1);
    EXPECT_EQ(*ob->RunOnce(), 0);  // both retried, both fail again
    EXPECT_EQ(*ob->SignalOverdue(), 1);
    ASSERT_EQ(overdue.size(), 2u);
    EXPECT_EQ(overdue[1].task_id, "t2");
  }
  // After a restart neither is reported again; each still counts as failing until acknowledged.
  auto ob = std::move(*Outbox::Open(o));
  ob->Register(&pg);
  ob->SetOverdueHook([&](const OverdueRevocation& r) { overdue.push_back(r); });
  now += absl::Hours(1);
  EXPECT_EQ(*ob->SignalOverdue(), 0);
  EXPECT_EQ(overdue.size(), 2u);
  EXPECT_EQ((*ob->Failing())[0].count, 2);
  pg.failures_left = 0;
  EXPECT_EQ(*ob->RunOnce(), 2);
  EXPECT_TRUE(ob->Failing()->empty());
  std::filesystem::remove_all(dir);
}

TEST(Outbox, OverdueReportCanBeDisabled) {
  char tmpl[] = "/tmp/writ-outbox-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  OutboxOptions o;
  o.path = dir + "/outbox.db";
  o.overdue_after = absl::ZeroDuration();
  o.clock = [&] { return now; };
  ScriptedProvider pg("pg");
  pg.failures_left = 10;
  auto ob = std::move(*Outbox::Open(o));
  ob->Register(&pg);
  int reported = 0;
  ob->SetOverdueHook([&](const OverdueRevocation&) { reported++; });
  ASSERT_TRUE(ob->Enqueue("pg", "t1", "x").ok());
  EXPECT_EQ(*ob->RunOnce(), 0);
  now += absl::Hours(24);
  EXPECT_EQ(*ob->SignalOverdue(), 0);
  EXPECT_EQ(reported, 0);
  EXPECT_EQ((*ob->Failing())[0].count, 1);  // still counted
  std::filesystem::remove_all(dir);
}

TEST(Outbox, OpensAnOutboxWrittenBeforeOverdueReports) {
  char tmpl[] = "/tmp/writ-outbox-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    // The schema as the first release wrote it, with one failing revocation in it.
    auto db = std::move(*SqliteDb::Open(dir + "/outbox.db"));
    ASSERT_TRUE(
        db->Exec(
              "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL,"
              " task_id TEXT NOT NULL, reason TEXT, created_ms INTEGER NOT NULL,"
              " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,"
              " last_error TEXT, UNIQUE(provider, task_id));"
              "INSERT INTO outbox(provider, task_id, reason, created_ms, attempts, next_attempt_ms,"
              " last_error) VALUES('pg', 'old', 'ended', 1000, 3, 0, 'permission denied')")
            .ok());
  }
  OutboxOptions o;
  o.path = dir + "/outbox.db";
  auto ob = Outbox::Open(o);
  ASSERT_TRUE(ob.ok()) << ob.status();
  std::vector<OverdueRevocation> overdue;
  (*ob)->SetOverdueHook([&](const OverdueRevocation& r) { overdue.push_back(r); });
  EXPECT_EQ(*(*ob)->SignalOverdue(), 1);
  ASSERT_EQ(overdue.size(), 1u);
  EXPECT_EQ(overdue[0].last_error, "permission denied");
  EXPECT_EQ(*(*ob)->Depth(), 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace writ::creds
