// PostgreSQL JIT roles against real, temporary clusters (testlib::PgCluster: initdb as user
// postgres, a unix socket in a temp dir, no TCP, SCRAM passwords so a login proves the issued
// password), with the provider connecting as the documented non-superuser admin (writ_admin: LOGIN
// CREATEROLE), never as `postgres`. Every test runs on Debian's PostgreSQL (15 on Debian 12) and on
// 16 and 18 (binaries from the npm registry, tests/e2e/pg/package.json): CREATEROLE means something
// else from 16 on. Needs root and the postgresql package; a version that cannot be had here skips
// with the reason.
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "creds/creds.h"
#include "creds/outbox.h"
#include "creds/provider.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/pg_cluster.h"

#ifndef WRIT_PG_VERSIONS_DIR
#error "WRIT_PG_VERSIONS_DIR must be defined"
#endif

namespace writ::creds {
namespace {

using ::testing::HasSubstr;

// "" = Debian's own server; otherwise a major version from tests/e2e/pg/package.json.
class PgProvider : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string why = testlib::PgCluster::SkipReason(); !why.empty()) GTEST_SKIP() << why;
    std::string bin;
    if (!GetParam().empty()) {
      std::string why;
      bin = testlib::PgVersionBinDir(std::string(WRIT_SOURCE_DIR) + "/tests/e2e/pg/package.json",
                                     WRIT_PG_VERSIONS_DIR, GetParam(), &why);
      if (bin.empty()) GTEST_SKIP() << why;
    }
    absl::Status st = pg_.Create(bin);
    ASSERT_TRUE(st.ok()) << st;
    std::cerr << "PostgreSQL server version " << pg_.server_version() << "\n";
    admin_ = pg_.provider_conninfo();
  }
  std::string Login(const std::string& user, const std::string& password) const {
    return pg_.Login(user, password);
  }
  static std::string Query(PGconn* c, const char* sql) { return testlib::PgCluster::Query(c, sql); }
  bool RoleExists(const std::string& role) const {
    return pg_.SuperuserQuery("SELECT count(*) FROM pg_roles WHERE rolname = '" + role + "'") ==
           "1";
  }
  // A role the superuser creates, for admins that lack something.
  std::string MakeAdmin(const std::string& name, const std::string& attrs) {
    EXPECT_EQ(pg_.SuperuserQuery(absl::StrCat("CREATE ROLE ", name, " LOGIN ", attrs,
                                              " PASSWORD 'pw-", name, "'")),
              "OK");
    return Login(name, "pw-" + name);
  }

  testlib::PgCluster pg_;
  std::string admin_;
};

// The result of a query sent with PQsendQuery, waiting at most `bound`: its first value, "ERROR:
// …", or
// "(timeout)".
std::string AwaitResult(PGconn* c, absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (PQisBusy(c)) {
    pollfd p{PQsocket(c), POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return "(timeout)";
    if (poll(&p, 1, ms) < 0) return "ERROR: poll";
    if (!PQconsumeInput(c)) break;
  }
  std::string out;
  while (PGresult* r = PQgetResult(c)) {
    if (out.empty()) {
      out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
            : PQresultStatus(r) == PGRES_COMMAND_OK                  ? "OK"
                                                    : "ERROR: " + std::string(PQerrorMessage(c));
    }
    PQclear(r);
  }
  return out.empty() ? "ERROR: " + std::string(PQerrorMessage(c)) : out;
}

TEST_P(PgProvider, RoleLogsInUntilRevokedAndItsLiveSessionIsTerminated) {
  // Per-task grants may let the task own objects: DROP OWNED must remove them.
  ASSERT_EQ(pg_.SuperuserQuery(absl::StrCat("GRANT CREATE ON SCHEMA public TO ",
                                            testlib::kPgProviderAdmin, " WITH GRANT OPTION")),
            "OK");
  ProviderConfig cfg{"pg", "postgres", {{"conninfo", admin_}}, {"SELECT ON TABLE orders"}};
  auto p = MakeProvider(cfg);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->CheckRevocable().ok()) << (*p)->CheckRevocable();
  TaskClaims task{"task-pg-1",
                  "spiffe://example.org/agent/db",
                  {"user:alice@x"},
                  "analyst",
                  absl::Now() + absl::Hours(1)};
  ProviderConfig per_task = cfg;
  per_task.grants = {"SELECT ON TABLE orders", "CREATE ON SCHEMA public"};
  auto cred = (*p)->Issue(task, per_task);
  ASSERT_TRUE(cred.ok()) << cred.status();
  EXPECT_EQ(cred->id, PostgresRoleName("writ_", "task-pg-1"));

  PGconn* wrong = PQconnectdb(Login(cred->id, "not-the-password").c_str());
  EXPECT_NE(PQstatus(wrong), CONNECTION_OK);
  PQfinish(wrong);

  PGconn* session = PQconnectdb(Login(cred->id, cred->secret).c_str());
  ASSERT_EQ(PQstatus(session), CONNECTION_OK) << PQerrorMessage(session);
  EXPECT_EQ(Query(session, "SELECT count(*) FROM orders"), "2");
  EXPECT_EQ(Query(session, "INSERT INTO orders VALUES (3)").rfind("ERROR", 0), 0u);
  EXPECT_EQ(Query(session, "CREATE TABLE public.task_owned(x int)"), "OK");
  // The session is busy when the revocation comes, as an agent's would be.
  ASSERT_EQ(PQsendQuery(session, "SELECT pg_sleep(30)"), 1);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(pg_.Sessions(cred->id), 1);

  const absl::Time t0 = absl::Now();
  absl::Status st = (*p)->Revoke("task-pg-1", "violation");
  ASSERT_TRUE(st.ok()) << st;
  std::string result = AwaitResult(session, absl::Seconds(10));
  std::cerr << "revoke -> session terminated: " << absl::ToDoubleMilliseconds(absl::Now() - t0)
            << " ms\n";
  EXPECT_THAT(result, HasSubstr("terminating connection due to administrator command"));
  EXPECT_EQ(Query(session, "SELECT count(*) FROM orders").rfind("ERROR", 0), 0u)
      << "the session still answers";
  PQfinish(session);
  ASSERT_TRUE((*p)->Revoke("task-pg-1", "again").ok());  // idempotent

  // The password no longer logs in, the role and what it owned are gone, and the admin kept
  // nothing.
  PGconn* after = PQconnectdb(Login(cred->id, cred->secret).c_str());
  EXPECT_NE(PQstatus(after), CONNECTION_OK);
  PQfinish(after);
  EXPECT_FALSE(RoleExists(cred->id));
  EXPECT_EQ(pg_.Sessions(cred->id), 0);
  EXPECT_EQ(pg_.SuperuserQuery("SELECT count(*) FROM pg_tables WHERE tablename = 'task_owned'"),
            "0");
  EXPECT_EQ(pg_.SuperuserQuery(absl::StrCat("SELECT count(*) FROM pg_auth_members WHERE member = '",
                                            testlib::kPgProviderAdmin, "'::regrole")),
            "0");
}

TEST_P(PgProvider, EachRevocationStepMayRunAgain) {
  ProviderConfig cfg{"pg", "postgres", {{"conninfo", admin_}}, {"SELECT ON TABLE orders"}};
  auto p = std::move(*MakeProvider(cfg));
  TaskClaims task{
      "task-pg-3", "spiffe://example.org/agent/db", {}, "analyst", absl::Now() + absl::Hours(1)};
  auto cred = p->Issue(task, cfg);
  ASSERT_TRUE(cred.ok()) << cred.status();
  // A revocation interrupted after its first steps (NOLOGIN, the admin's membership) by a crash.
  PGconn* admin = PQconnectdb(admin_.c_str());
  ASSERT_EQ(PQstatus(admin), CONNECTION_OK) << PQerrorMessage(admin);
  EXPECT_EQ(Query(admin, ("ALTER ROLE " + cred->id + " NOLOGIN").c_str()), "OK");
  EXPECT_EQ(Query(admin, ("GRANT " + cred->id + " TO CURRENT_USER").c_str()), "OK");
  PQfinish(admin);
  EXPECT_TRUE(p->Revoke("task-pg-3", "retry").ok());
  EXPECT_FALSE(RoleExists(cred->id));
  EXPECT_TRUE(p->Revoke("never-issued", "x").ok());
}

TEST_P(PgProvider, OutboxRevokesThroughProvider) {
  char tmpl[] = "/tmp/writ-pgob-XXXXXX";
  std::string obdir = mkdtemp(tmpl);
  ProviderConfig cfg{"pg", "postgres", {{"conninfo", admin_}}, {"SELECT ON TABLE orders"}};
  auto p = std::move(*MakeProvider(cfg));
  TaskClaims task{
      "task-pg-2", "spiffe://example.org/agent/db", {}, "analyst", absl::Now() + absl::Hours(1)};
  auto cred = p->Issue(task, cfg);
  ASSERT_TRUE(cred.ok()) << cred.status();
  auto ob = std::move(*Outbox::Open({obdir + "/outbox.db"}));
  ob->Register(p.get());
  ASSERT_TRUE(ob->Enqueue("pg", "task-pg-2", "task_ended").ok());
  EXPECT_EQ(*ob->RunOnce(), 1);
  EXPECT_EQ(*ob->Depth(), 0);
  PGconn* after = PQconnectdb(Login(cred->id, cred->secret).c_str());
  EXPECT_NE(PQstatus(after), CONNECTION_OK);
  PQfinish(after);
  std::filesystem::remove_all(obdir);
}

// An admin that could not revoke is refused, naming what it lacks: by the provider's check, by
// Issue (nothing is created that could not be taken back) and by the CredentialService at start
// (writd then does not start). The check leaves nothing behind: it runs in a transaction it rolls
// back.
TEST_P(PgProvider, AdminsThatCouldNotRevokeAreRefusedNamingWhatTheyLack) {
  ProviderConfig cfg{"pg", "postgres", {{"conninfo", MakeAdmin("plain_admin", "")}}, {}};
  auto p = std::move(*MakeProvider(cfg));
  absl::Status st = p->CheckRevocable();
  EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(
      std::string(st.message()),
      HasSubstr("provider 'pg': admin role \"plain_admin\" could not revoke the credentials it "
                "issues: it lacks CREATEROLE"));
  TaskClaims task{
      "task-pg-4", "spiffe://example.org/agent/db", {}, "analyst", absl::Now() + absl::Hours(1)};
  auto cred = p->Issue(task, cfg);
  EXPECT_TRUE(absl::IsPermissionDenied(cred.status())) << cred.status();
  EXPECT_FALSE(RoleExists(PostgresRoleName("writ_", "task-pg-4")));

  ProviderConfig nogrant{"pg",
                         "postgres",
                         {{"conninfo", MakeAdmin("nogrant_admin", "CREATEROLE")}},
                         {"SELECT ON TABLE orders"}};
  st = (*MakeProvider(nogrant))->CheckRevocable();
  EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
  EXPECT_THAT(
      std::string(st.message()),
      HasSubstr(
          "it cannot grant 'SELECT ON TABLE orders' (it needs that privilege WITH GRANT OPTION"));
  EXPECT_EQ(pg_.SuperuserQuery("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'writ_probe%'"),
            "0");

  char tmpl[] = "/tmp/writ-pgsvc-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  CredentialConfig c;
  c.state_dir = dir;
  c.trust_domain = "example.org";
  c.http_addr = "";
  c.providers = {cfg};
  auto s = CredentialService::Start(c);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("it lacks CREATEROLE"));
  c.providers = {{"pg", "postgres", {{"conninfo", admin_}}, {"SELECT ON TABLE orders"}}};
  s = CredentialService::Start(c);
  EXPECT_TRUE(s.ok()) << s.status();
  s = absl::InternalError("stopped");  // stop the service before its state dir goes
  std::filesystem::remove_all(dir);
}

// Before 16 the admin's membership confers a task role's privileges only through INHERIT; from 16
// the provider grants itself membership WITH INHERIT TRUE, so a NOINHERIT admin works there.
TEST_P(PgProvider, NoInheritAdminIsRefusedBefore16AndWorksFrom16) {
  ProviderConfig cfg{
      "pg", "postgres", {{"conninfo", MakeAdmin("noinherit_admin", "CREATEROLE NOINHERIT")}}, {}};
  auto p = std::move(*MakeProvider(cfg));
  absl::Status st = p->CheckRevocable();
  if (pg_.server_version() < 160000) {
    EXPECT_TRUE(absl::IsPermissionDenied(st)) << st;
    EXPECT_THAT(std::string(st.message()), HasSubstr("it is NOINHERIT"));
    EXPECT_THAT(std::string(st.message()), HasSubstr("ALTER ROLE \"noinherit_admin\" INHERIT"));
    return;
  }
  ASSERT_TRUE(st.ok()) << st;
  TaskClaims task{
      "task-pg-5", "spiffe://example.org/agent/db", {}, "analyst", absl::Now() + absl::Hours(1)};
  auto cred = p->Issue(task, cfg);
  ASSERT_TRUE(cred.ok()) << cred.status();
  PGconn* session = PQconnectdb(Login(cred->id, cred->secret).c_str());
  ASSERT_EQ(PQstatus(session), CONNECTION_OK) << PQerrorMessage(session);
  ASSERT_EQ(PQsendQuery(session, "SELECT pg_sleep(30)"), 1);
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(p->Revoke("task-pg-5", "ended").ok());
  EXPECT_THAT(AwaitResult(session, absl::Seconds(10)), HasSubstr("terminating connection"));
  PQfinish(session);
  EXPECT_FALSE(RoleExists(cred->id));
}

INSTANTIATE_TEST_SUITE_P(Versions, PgProvider, ::testing::Values("", "16", "18"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           return i.param.empty() ? std::string("Debian") : "Pg" + i.param;
                         });

}  // namespace
}  // namespace writ::creds
