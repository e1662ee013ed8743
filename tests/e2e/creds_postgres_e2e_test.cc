// PostgreSQL JIT roles against a real, temporary cluster (testlib::PgCluster: initdb as user postgres, a
// unix socket in a temp dir, no TCP, SCRAM passwords so a login proves the issued password). Needs root
// and the Debian postgresql package; skips with the reason otherwise.
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "creds/outbox.h"
#include "creds/provider.h"
#include "gtest/gtest.h"
#include "testlib/pg_cluster.h"

namespace writ::creds {
namespace {

class PgCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = testlib::PgCluster::SkipReason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(pg_.Create().ok());
    admin_ = pg_.admin_conninfo();
  }
  std::string Login(const std::string& user, const std::string& password) const { return pg_.Login(user, password); }
  static std::string Query(PGconn* c, const char* sql) { return testlib::PgCluster::Query(c, sql); }

  testlib::PgCluster pg_;  // the cluster helper shared with the writd e2e tests (tests/testlib)
  std::string admin_;
};

TEST_F(PgCluster, RoleLogsInUntilRevokedAndSessionIsTerminated) {
  ProviderConfig cfg{"pg", "postgres", {{"conninfo", admin_}}, {"SELECT ON TABLE orders"}};
  auto p = MakeProvider(cfg);
  ASSERT_TRUE(p.ok()) << p.status();
  TaskClaims task{"task-pg-1", "spiffe://example.org/agent/db", {"user:alice@x"}, "analyst",
                  absl::Now() + absl::Hours(1)};
  auto cred = (*p)->Issue(task, cfg);
  ASSERT_TRUE(cred.ok()) << cred.status();
  EXPECT_EQ(cred->id, PostgresRoleName("writ_", "task-pg-1"));

  PGconn* wrong = PQconnectdb(Login(cred->id, "not-the-password").c_str());
  EXPECT_NE(PQstatus(wrong), CONNECTION_OK);
  PQfinish(wrong);

  PGconn* session = PQconnectdb(Login(cred->id, cred->secret).c_str());
  ASSERT_EQ(PQstatus(session), CONNECTION_OK) << PQerrorMessage(session);
  EXPECT_EQ(Query(session, "SELECT count(*) FROM orders"), "2");
  EXPECT_NE(Query(session, "INSERT INTO orders VALUES (3)").rfind("ERROR", 0), std::string::npos);

  ASSERT_TRUE((*p)->Revoke("task-pg-1", "violation").ok());
  ASSERT_TRUE((*p)->Revoke("task-pg-1", "again").ok());  // idempotent

  // The open session was terminated...
  EXPECT_EQ(Query(session, "SELECT 1").rfind("ERROR", 0), 0u);
  PQfinish(session);
  // ...and the password no longer logs in (the role is gone).
  PGconn* after = PQconnectdb(Login(cred->id, cred->secret).c_str());
  EXPECT_NE(PQstatus(after), CONNECTION_OK);
  PQfinish(after);
  PGconn* admin = PQconnectdb(admin_.c_str());
  EXPECT_EQ(Query(admin, ("SELECT count(*) FROM pg_roles WHERE rolname = '" + cred->id + "'").c_str()), "0");
  PQfinish(admin);
}

TEST_F(PgCluster, OutboxRevokesThroughProvider) {
  char tmpl[] = "/tmp/writ-pgob-XXXXXX";
  std::string obdir = mkdtemp(tmpl);
  ProviderConfig cfg{"pg", "postgres", {{"conninfo", admin_}}, {"SELECT ON TABLE orders"}};
  auto p = std::move(*MakeProvider(cfg));
  TaskClaims task{"task-pg-2", "spiffe://example.org/agent/db", {}, "analyst", absl::Now() + absl::Hours(1)};
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

}  // namespace
}  // namespace writ::creds
