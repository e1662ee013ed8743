// PostgreSQL JIT roles against a real, temporary cluster: initdb as user postgres, started on a unix
// socket in a temp dir (no TCP), SCRAM passwords so a login proves the issued password. Needs root (to run
// as postgres) and the Debian postgresql package; skips with the reason otherwise.
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "creds/outbox.h"
#include "creds/provider.h"
#include "gtest/gtest.h"

namespace writ::creds {
namespace {

std::string FindPgBin() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(e.path() / "bin/initdb")) return (e.path() / "bin").string();
  }
  return "";
}

class PgCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run the cluster as user postgres";
    bin_ = FindPgBin();
    if (bin_.empty()) GTEST_SKIP() << "no /usr/lib/postgresql/*/bin/initdb (install postgresql)";
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) GTEST_SKIP() << "no 'postgres' user";
    char tmpl[] = "/tmp/writ-pg-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ASSERT_EQ(chown(dir_.c_str(), pw->pw_uid, pw->pw_gid), 0);
    std::ofstream(dir_ + "/pw") << admin_password_ << "\n";
    ASSERT_EQ(chown((dir_ + "/pw").c_str(), pw->pw_uid, pw->pw_gid), 0);
    // Any port number works: with listen_addresses='' it only names the socket file; pick one from our pid
    // so parallel runs do not collide.
    port_ = 20000 + getpid() % 20000;
    std::string initdb = absl::StrCat("runuser -u postgres -- ", bin_, "/initdb -D ", dir_,
                                      "/data -U postgres --auth=scram-sha-256 --pwfile=", dir_,
                                      "/pw -E UTF8 > ", dir_, "/initdb.log 2>&1");
    ASSERT_EQ(std::system(initdb.c_str()), 0) << initdb;
    std::string start = absl::StrCat("runuser -u postgres -- ", bin_, "/pg_ctl -D ", dir_, "/data -l ", dir_,
                                     "/server.log -w -t 60 -o \"-k ", dir_, " -p ", port_,
                                     " -c listen_addresses=''\" start > /dev/null 2>&1");
    ASSERT_EQ(std::system(start.c_str()), 0) << start;
    started_ = true;
    admin_ = absl::StrCat("host=", dir_, " port=", port_, " user=postgres password=", admin_password_,
                          " dbname=postgres");
    PGconn* c = PQconnectdb(admin_.c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PQclear(PQexec(c, "CREATE TABLE orders(id int); INSERT INTO orders VALUES (1), (2);"));
    PQfinish(c);
  }
  void TearDown() override {
    if (started_) {
      std::string stop = absl::StrCat("runuser -u postgres -- ", bin_, "/pg_ctl -D ", dir_,
                                      "/data -m immediate -w -t 30 stop > /dev/null 2>&1");
      EXPECT_EQ(std::system(stop.c_str()), 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string Login(const std::string& user, const std::string& password) const {
    return absl::StrCat("host=", dir_, " port=", port_, " user=", user, " password=", password,
                        " dbname=postgres connect_timeout=5");
  }
  // Scalar result of `sql` on `c`, or "ERROR: ..." text.
  static std::string Query(PGconn* c, const char* sql) {
    PGresult* r = PQexec(c, sql);
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
                      : PQresultStatus(r) == PGRES_COMMAND_OK                  ? "OK"
                                                                               : "ERROR: " + std::string(PQerrorMessage(c));
    PQclear(r);
    return out;
  }

  std::string bin_, dir_, admin_;
  std::string admin_password_ = "admin-" + std::to_string(getpid());
  int port_ = 0;
  bool started_ = false;
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
