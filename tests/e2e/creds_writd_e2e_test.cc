// Provider credentials chosen per intent, through the real writd and writ, with the provider
// connecting as the documented non-superuser admin (writ_admin: LOGIN CREATEROLE; never
// `postgres`): an intent asking for a PostgreSQL role gets one at `writ run`, delivered only as the
// task's 0400 file; a live session of the role, in pg_sleep, is terminated within a measured bound
// after `writ revoke`, a violation (kill + revoke), the deadline and task end, and the role is
// gone; a PostgreSQL that is down at task start fails the start (required) or is skipped with a
// warning (optional); a revocation pending while PostgreSQL is down survives kill -9 of writd and
// completes after restart, and one failing for longer than credentials.revocation_alert_after shows
// in `writ status` and /metrics and becomes a high-severity finding; an admin that could not revoke
// stops writd at start, naming what it lacks. Needs root (writd loads BPF; the cluster runs as
// postgres) and the postgresql package; skips otherwise.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/listener.h"
#include "testlib/pg_cluster.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kAgent[] = "spiffe://example.org/agent/db";
// How long a revocation may take to end a live session here, on a loaded 2-vCPU VM (measured values
// are printed; docs/performance.md has the benchmark).
constexpr auto kSessionEndBound = std::chrono::seconds(10);

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The result of a query sent with PQsendQuery, waiting at most `bound`: its first value, "ERROR:
// …", or
// "(timeout)".
std::string AwaitResult(PGconn* c, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (PQisBusy(c)) {
    pollfd p{PQsocket(c), POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "(timeout)";
    if (poll(&p, 1, static_cast<int>(left.count())) < 0) return "ERROR: poll";
    if (!PQconsumeInput(c)) break;
  }
  std::string out;
  while (PGresult* r = PQgetResult(c)) {
    if (out.empty()) {
      out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                ? PQgetvalue(r, 0, 0)
                : "ERROR: " + std::string(PQerrorMessage(c));
    }
    PQclear(r);
  }
  return out.empty() ? "ERROR: " + std::string(PQerrorMessage(c)) : out;
}

// key=value lines of a credential file.
std::map<std::string, std::string> ParseCred(const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    if (eq != absl::string_view::npos)
      out[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return out;
}

std::string PsqlBin() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(e.path() / "bin/psql")) return (e.path() / "bin/psql").string();
  }
  return "";
}

std::string Intents(const std::string& touch) {
  return absl::StrCat(R"(apiVersion: writ.dev/v1
kind: Intent
name: pg-reader
exec:
  deny: [")",
                      touch, R"("]
on_violation: [alert, kill, revoke]
mode: enforce
credentials:
  - provider: pg
    grants: ["SELECT ON TABLE orders"]
---
apiVersion: writ.dev/v1
kind: Intent
name: pg-optional
credentials:
  - {provider: pg, required: false}
mode: monitor
)");
}

class CredsWritdE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "e2e needs root: writd loads BPF programs";
    if (std::string why = PgCluster::SkipReason(); !why.empty()) GTEST_SKIP() << why;
    psql_ = PsqlBin();
    if (psql_.empty()) GTEST_SKIP() << "no /usr/lib/postgresql/*/bin/psql (install postgresql)";
    ASSERT_TRUE(pg_.Create().ok());
    work_ = MakeAgentDir("writ-agent");
    ASSERT_FALSE(work_.empty());
    touch_ = std::filesystem::canonical("/usr/bin/touch").string();
    if (start_in_setup_) {
      absl::Status st = StartWritd(pg_.provider_conninfo());
      ASSERT_TRUE(st.ok()) << st << "\n" << w_.log();
    }
  }
  // writd with the postgres provider connecting as `conninfo`, plus `credentials:` lines and
  // arguments.
  absl::Status StartWritd(const std::string& conninfo, const std::string& more_credentials = "",
                          const std::vector<std::string>& args = {}) {
    WritdInstance::Options o;
    o.mode = "monitor";
    o.policies["creds.yaml"] = Intents(touch_);
    o.extra_config = absl::StrCat("credentials:\n", more_credentials,
                                  "  providers:\n    - name: pg\n      type: postgres\n",
                                  "      conninfo: \"", conninfo, " connect_timeout=3\"\n",
                                  "      grants: [\"SELECT ON TABLE orders\"]\n");
    o.extra_args = args;
    return w_.Start(o);
  }
  // psql as the task's role, from inside the task (after sourcing its credential file).
  std::string Psql() const {
    return absl::StrCat("PGPASSWORD=\"$secret\" ", psql_, " -X -tA -h ", pg_.dir(), " -p ",
                        pg_.port(), " -U \"$id\" -d postgres");
  }
  std::string Source() const {
    return absl::StrCat("f=\"$WRIT_CREDENTIALS_DIR/pg\"; [ -r \"$f\" ] || { echo nocred > ", work_,
                        "/count; exit 9; }; . \"$f\"; ");
  }
  // Waits until `role` has `n` live sessions (the superuser's view of pg_stat_activity).
  bool WaitSessions(const std::string& role, int n,
                    std::chrono::milliseconds t = std::chrono::seconds(15)) {
    auto deadline = std::chrono::steady_clock::now() + t;
    while (pg_.Sessions(role) != n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  json WaitIssue() {
    return w_.WaitForEvent([&](const json& e) {
      return e.value("kind", "") == "credential" &&
             e["credential"].value("operation", "") == "issue" &&
             e["credential"].value("provider", "") == "pg";
    });
  }

  bool start_in_setup_ = true;
  void TearDown() override {
    if (w_.running()) {
      EXPECT_EQ(w_.Stop(), 0) << w_.log();
    }
    if (!work_.empty()) std::filesystem::remove_all(work_);
  }

  // A task script: source the credential, log in with it (count of orders → work/count), then wait
  // (bounded) for work/go and run `then`.
  // `before_go` runs once the count is written, before the wait.
  std::string Script(const std::string& then, const std::string& before_go = "") const {
    return absl::StrCat(Source(), Psql(), " -c 'SELECT count(*) FROM orders' > ", work_,
                        "/count.tmp 2>&1; mv ", work_, "/count.tmp ", work_, "/count; ", before_go,
                        "i=0; while [ ! -e ", work_,
                        "/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; ", then);
  }
  // A session of the task's role left busy in the background (its client may die with the task; the
  // server's backend goes on until the revocation terminates it).
  std::string SleepingSession() const {
    return Psql() + " -c 'SELECT pg_sleep(60)' >/dev/null 2>&1 & ";
  }
  std::string WaitFile(const std::string& path,
                       std::chrono::milliseconds t = std::chrono::seconds(15)) const {
    auto deadline = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < deadline) {
      if (access(path.c_str(), F_OK) == 0) return Slurp(path);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "(timeout)";
  }
  json WaitCred(const std::string& task, const std::string& op,
                std::chrono::milliseconds t = std::chrono::seconds(15)) {
    return w_.WaitForEvent(
        [&](const json& e) {
          return e.value("kind", "") == "credential" && e["agent"].value("task_id", "") == task &&
                 e["credential"].value("provider", "") == "pg" &&
                 e["credential"].value("operation", "") == op;
        },
        t);
  }
  long OutboxDepth() {
    CmdResult s = w_.Writ({"status"});
    size_t at = s.out.find("revocation_outbox_depth=");
    if (at == std::string::npos) return -1;
    return std::stol(s.out.substr(at + strlen("revocation_outbox_depth=")));
  }
  // The depth settles once every queued revocation (violation, then task end) is acknowledged.
  long WaitDepth(long want, std::chrono::milliseconds t = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + t;
    long d = OutboxDepth();
    while (d != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      d = OutboxDepth();
    }
    return d;
  }
  bool RoleExists(const std::string& role) {
    return pg_.SuperuserQuery("SELECT count(*) FROM pg_roles WHERE rolname = '" + role + "'") ==
           "1";
  }

  PgCluster pg_;
  WritdInstance w_;
  std::string psql_, work_, touch_;
};

TEST_F(CredsWritdE2e, IntentCredentialLogsInAndViolationRevokesIt) {
  pid_t run = w_.WritAsync(
      {"run", "--agent", kAgent, "--intent", "pg-reader", "--", "/bin/sh", "-c",
       Script(absl::StrCat(touch_, " ", work_, "/violated; echo survived > ", work_, "/after"),
              SleepingSession())},
      "run");
  // The task logged in with its own role and read the table its grant allows.
  EXPECT_EQ(WaitFile(work_ + "/count"), "2\n");

  std::string task;
  json issue = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "credential" &&
           e["credential"].value("operation", "") == "issue" &&
           e["credential"].value("provider", "") == "pg";
  });
  ASSERT_FALSE(issue.is_null()) << w_.log();
  task = issue["agent"].value("task_id", "");
  EXPECT_EQ(issue["credential"]["type"], "postgres_role");
  EXPECT_EQ(issue["agent"]["intent"], "pg-reader");
  const std::string role = issue["credential"].value("jti", "");
  ASSERT_FALSE(role.empty());

  // Delivered as the task's own file: 0400, owned by the user the task runs as, in a 0500
  // directory.
  const std::string dir = w_.dir() + "/run/credentials/" + task;
  struct stat st {};
  ASSERT_EQ(stat((dir + "/pg").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  EXPECT_EQ(st.st_uid, TestAgentUid());
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0500u);
  auto cred = ParseCred(Slurp(dir + "/pg"));
  EXPECT_EQ(cred["id"], role);
  EXPECT_EQ(cred["type"], "postgres_role");
  ASSERT_GE(cred["secret"].size(), 24u);
  EXPECT_TRUE(RoleExists(role));

  // An open session with the task's credential, held outside the task so only revocation can end
  // it.
  PGconn* session = PQconnectdb(pg_.Login(role, cred["secret"]).c_str());
  ASSERT_EQ(PQstatus(session), CONNECTION_OK) << PQerrorMessage(session);
  EXPECT_EQ(PgCluster::Query(session, "SELECT count(*) FROM orders"), "2");

  // Two live sessions: the task's own (busy in pg_sleep) and the one held outside.
  ASSERT_TRUE(WaitSessions(role, 2)) << pg_.Sessions(role);

  const auto t_go = std::chrono::steady_clock::now();
  std::ofstream(work_ + "/go") << "";
  // The task's client dies with the task; its server-side session only ends by revocation.
  EXPECT_TRUE(WaitSessions(role, 0, kSessionEndBound)) << pg_.Sessions(role) << " sessions left\n"
                                                       << w_.log();
  std::cerr << "violation -> every session of the role terminated: " << MsSince(t_go) << " ms\n";
  CmdResult r = w_.WaitAsync(run, "run");
  EXPECT_EQ(r.exit_code, 137) << r.err;
  EXPECT_FALSE(std::filesystem::exists(work_ + "/violated"));
  EXPECT_FALSE(std::filesystem::exists(work_ + "/after"));

  // revoke_queued at the violation, revoke when PostgreSQL acknowledged.
  EXPECT_FALSE(WaitCred(task, "revoke_queued").is_null());
  json revoked = WaitCred(task, "revoke");
  ASSERT_FALSE(revoked.is_null()) << w_.log();
  EXPECT_EQ(revoked["credential"]["type"], "postgres_role");

  EXPECT_EQ(PgCluster::Query(session, "SELECT 1").rfind("ERROR", 0), 0u)
      << "session survived revocation";
  PQfinish(session);
  PGconn* again = PQconnectdb(pg_.Login(role, cred["secret"]).c_str());
  EXPECT_NE(PQstatus(again), CONNECTION_OK);
  PQfinish(again);
  EXPECT_FALSE(RoleExists(role));
  EXPECT_FALSE(std::filesystem::exists(dir)) << "credential files outlived the revocation";
  EXPECT_EQ(WaitDepth(0), 0);

  // Never the secret: not in any event.
  EXPECT_EQ(Slurp(w_.events_path()).find(cred["secret"]), std::string::npos);
}

// The agent's own session, busy in pg_sleep when `writ revoke` comes, is cut before its next query,
// and the password it still holds (sourced before the file was removed) no longer logs in.
TEST_F(CredsWritdE2e, WritRevokeTerminatesTheTasksLiveSession) {
  const std::string w = work_;
  pid_t run = w_.WritAsync(
      {"run", "--agent", kAgent, "--intent", "pg-reader", "--", "/bin/sh", "-c",
       absl::StrCat(Source(), Psql(), " -c 'SELECT count(*) FROM orders' > ", w,
                    "/count.tmp 2>&1; mv ", w, "/count.tmp ", w, "/count; ", Psql(),
                    " -c 'SELECT pg_sleep(20)' -c 'SELECT count(*) FROM orders' > ", w,
                    "/psql.out 2>&1; echo $? > ", w, "/psql.rc.tmp; mv ", w, "/psql.rc.tmp ", w,
                    "/psql.rc; ", Psql(), " -c 'SELECT 1' > ", w, "/relogin.out 2>&1; echo $? > ",
                    w, "/relogin.rc.tmp; mv ", w, "/relogin.rc.tmp ", w, "/relogin.rc")},
      "run");
  ASSERT_EQ(WaitFile(w + "/count"), "2\n");
  json iss = WaitIssue();
  ASSERT_FALSE(iss.is_null()) << w_.log();
  const std::string task = iss["agent"].value("task_id", "");
  const std::string role = iss["credential"].value("jti", "");
  ASSERT_TRUE(WaitSessions(role, 1)) << "the task's pg_sleep session never showed";

  const auto t0 = std::chrono::steady_clock::now();
  CmdResult rv = w_.Writ({"revoke", task});
  ASSERT_EQ(rv.exit_code, 0) << rv.err;
  std::string rc = WaitFile(w + "/psql.rc", kSessionEndBound);
  std::cerr << "writ revoke -> the task's psql session terminated: " << MsSince(t0) << " ms\n";
  ASSERT_NE(rc, "(timeout)") << "the session outlived the revocation\n" << w_.log();
  EXPECT_NE(rc, "0\n");
  const std::string out = Slurp(w + "/psql.out");
  EXPECT_THAT(out, HasSubstr("terminating connection due to administrator command"));
  EXPECT_EQ(out.find("\n2\n"), std::string::npos)
      << "the query after the revocation returned rows: " << out;
  EXPECT_NE(WaitFile(w + "/relogin.rc"), "0\n") << Slurp(w + "/relogin.out");
  EXPECT_FALSE(WaitCred(task, "revoke").is_null()) << w_.log();
  EXPECT_FALSE(RoleExists(role));
  EXPECT_EQ(pg_.Sessions(role), 0);
  CmdResult r = w_.WaitAsync(run, "run");
  EXPECT_EQ(r.exit_code, 0) << r.err;  // revoking takes the credentials, not the processes
}

// A session held outside the task with its credential (a leaked password, a pool) ends when the
// task ends.
TEST_F(CredsWritdE2e, TaskEndTerminatesASessionHeldOutsideTheTask) {
  pid_t run = w_.WritAsync(
      {"run", "--agent", kAgent, "--intent", "pg-reader", "--", "/bin/sh", "-c", Script("exit 0")},
      "run");
  ASSERT_EQ(WaitFile(work_ + "/count"), "2\n");
  json iss = WaitIssue();
  ASSERT_FALSE(iss.is_null()) << w_.log();
  const std::string task = iss["agent"].value("task_id", "");
  const std::string role = iss["credential"].value("jti", "");
  auto cred = ParseCred(Slurp(w_.dir() + "/run/credentials/" + task + "/pg"));
  PGconn* session = PQconnectdb(pg_.Login(role, cred["secret"]).c_str());
  ASSERT_EQ(PQstatus(session), CONNECTION_OK) << PQerrorMessage(session);
  ASSERT_EQ(PQsendQuery(session, "SELECT pg_sleep(30)"), 1);
  ASSERT_TRUE(WaitSessions(role, 1));

  const auto t_go = std::chrono::steady_clock::now();
  std::ofstream(work_ + "/go") << "";
  std::string result = AwaitResult(session, kSessionEndBound);
  std::cerr << "task exit -> outside session terminated: " << MsSince(t_go) << " ms\n";
  EXPECT_THAT(result, HasSubstr("terminating connection due to administrator command"));
  PQfinish(session);
  json end = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
  });
  ASSERT_FALSE(end.is_null()) << w_.log();
  EXPECT_EQ(end["task"]["reason"], "exited");
  EXPECT_FALSE(WaitCred(task, "revoke").is_null()) << w_.log();
  EXPECT_FALSE(RoleExists(role));
  CmdResult r = w_.WaitAsync(run, "run");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CredsWritdE2e, RequiredProviderDownFailsTheStartAndLeavesNothing) {
  ASSERT_TRUE(pg_.StopServer().ok());
  CmdResult r = w_.Writ({"run", "--agent", kAgent, "--intent", "pg-reader", "--", "/bin/sh", "-c",
                         absl::StrCat("echo ran > ", work_, "/ran")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("provider 'pg'"));
  EXPECT_THAT(r.err, HasSubstr("pg-reader"));
  EXPECT_FALSE(std::filesystem::exists(work_ + "/ran")) << "the command ran without its credential";
  std::string task = TaskIdFrom(r.err);
  ASSERT_FALSE(task.empty()) << r.err;
  json end = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
  });
  ASSERT_FALSE(end.is_null()) << w_.log();
  EXPECT_EQ(end["task"]["reason"], "aborted");
  EXPECT_FALSE(std::filesystem::exists(w_.dir() + "/run/credentials/" + task));
  EXPECT_FALSE(std::filesystem::exists(w_.cgroup_root() + "/" + task));
  for (const auto& e : w_.TaskEvents(task)) {
    if (e.value("kind", "") == "credential") {
      EXPECT_NE(e["credential"].value("operation", ""), "issue") << e;
    }
  }
  // PostgreSQL was never reached: nothing to revoke there, nothing left in the outbox.
  EXPECT_EQ(OutboxDepth(), 0);
  CmdResult s = w_.Writ({"status"});
  EXPECT_THAT(s.out, HasSubstr("tasks: 0"));
}

TEST_F(CredsWritdE2e, OptionalProviderDownStartsWithoutItAndWarns) {
  ASSERT_TRUE(pg_.StopServer().ok());
  CmdResult r = w_.Writ({"run", "--agent", kAgent, "--intent", "pg-optional", "--", "/bin/sh", "-c",
                         absl::StrCat("echo \"$WRIT_CREDENTIALS_DIR\" > ", work_,
                                      "/dir; ls -A \"$WRIT_CREDENTIALS_DIR\" > ", work_,
                                      "/ls 2>&1; echo ran > ", work_, "/ran")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Slurp(work_ + "/ran"), "ran\n");
  std::string task = TaskIdFrom(r.err);
  EXPECT_EQ(Slurp(work_ + "/dir"), w_.dir() + "/run/credentials/" + task + "\n");
  EXPECT_THAT(Slurp(work_ + "/ls"), HasSubstr("No such file"));  // no credential was written
  json warn = WaitCred(task, "issue_failed");
  ASSERT_FALSE(warn.is_null()) << w_.log();
  EXPECT_EQ(warn["credential"]["type"], "postgres_role");
  EXPECT_THAT(warn["credential"].value("detail", ""), HasSubstr("connect"));
}

TEST_F(CredsWritdE2e, DeadlineRevokesTheRoleThroughTheOutbox) {
  pid_t run = w_.WritAsync({"run", "--agent", kAgent, "--intent", "pg-reader", "--ttl", "3s", "--",
                            "/bin/sh", "-c", Script("sleep 30", SleepingSession())},
                           "run");
  ASSERT_EQ(WaitFile(work_ + "/count"), "2\n");
  json iss = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "credential" && e["credential"].value("operation", "") == "issue";
  });
  ASSERT_FALSE(iss.is_null());
  const std::string task = iss["agent"].value("task_id", "");
  const std::string role = iss["credential"].value("jti", "");
  EXPECT_FALSE(
      iss["credential"].value("expires", "").empty());  // the role is VALID UNTIL the deadline
  EXPECT_TRUE(RoleExists(role));
  ASSERT_TRUE(WaitSessions(role, 1)) << pg_.Sessions(role);
  json end = w_.WaitForEvent(
      [&](const json& e) {
        return e.value("kind", "") == "task_end" && e["agent"].value("task_id", "") == task;
      },
      std::chrono::seconds(15));
  ASSERT_FALSE(end.is_null()) << w_.log();
  EXPECT_EQ(end["task"]["reason"], "deadline");
  const auto t_end = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitSessions(role, 0, kSessionEndBound)) << pg_.Sessions(role) << " sessions left\n"
                                                       << w_.log();
  std::cerr << "deadline (task_end seen) -> session terminated: " << MsSince(t_end) << " ms\n";
  ASSERT_FALSE(WaitCred(task, "revoke").is_null()) << w_.log();
  EXPECT_FALSE(RoleExists(role));
  EXPECT_FALSE(std::filesystem::exists(w_.dir() + "/run/credentials/" + task));
  CmdResult r = w_.WaitAsync(run, "run");
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(CredsWritdE2e, PendingRevocationSurvivesKill9AndCompletesAfterRestart) {
  pid_t run = w_.WritAsync(
      {"run", "--agent", kAgent, "--intent", "pg-reader", "--", "/bin/sh", "-c", Script("exit 0")},
      "run");
  ASSERT_EQ(WaitFile(work_ + "/count"), "2\n");
  json iss = w_.WaitForEvent([&](const json& e) {
    return e.value("kind", "") == "credential" && e["credential"].value("operation", "") == "issue";
  });
  ASSERT_FALSE(iss.is_null());
  const std::string task = iss["agent"].value("task_id", "");
  const std::string role = iss["credential"].value("jti", "");
  ASSERT_TRUE(RoleExists(role));

  // PostgreSQL goes down; `writ revoke` queues the revocation, which cannot complete.
  ASSERT_TRUE(pg_.StopServer().ok());
  CmdResult rv = w_.Writ({"revoke", task});
  EXPECT_EQ(rv.exit_code, 0) << rv.err;
  ASSERT_FALSE(WaitCred(task, "revoke_queued").is_null());
  EXPECT_FALSE(WaitCred(task, "revoke_failed").is_null());
  EXPECT_EQ(OutboxDepth(), 1);

  // writd dies with the revocation pending; PostgreSQL and writd come back; the revocation
  // completes.
  EXPECT_EQ(w_.Kill9(), 128 + SIGKILL);
  ASSERT_TRUE(pg_.StartServer().ok());
  ASSERT_TRUE(w_.Restart().ok()) << w_.log();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (RoleExists(role) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(RoleExists(role)) << w_.log();
  EXPECT_EQ(WaitDepth(0), 0);
  std::ofstream(work_ + "/go") << "";
  CmdResult r = w_.WaitAsync(run, "run");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

class CredsWritdAdmin : public CredsWritdE2e {
 protected:
  CredsWritdAdmin() { start_in_setup_ = false; }
};

TEST_F(CredsWritdAdmin, AnAdminThatCouldNotRevokeStopsWritdAtStart) {
  ASSERT_EQ(pg_.SuperuserQuery("CREATE ROLE no_createrole LOGIN PASSWORD 'pw1'"), "OK");
  absl::Status st = StartWritd(pg_.Login("no_createrole", "pw1"));
  ASSERT_FALSE(st.ok()) << "writd started with a provider that could not revoke";
  EXPECT_THAT(
      std::string(st.message()),
      HasSubstr(
          "provider 'pg': admin role \"no_createrole\" could not revoke the credentials it issues: "
          "it lacks CREATEROLE"));
  // With CREATEROLE but without the GRANT OPTION the configured grant needs.
  ASSERT_EQ(pg_.SuperuserQuery("CREATE ROLE no_grant_option LOGIN CREATEROLE PASSWORD 'pw2'"),
            "OK");
  st = StartWritd(pg_.Login("no_grant_option", "pw2"));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("it cannot grant 'SELECT ON TABLE orders'"));
}

// PostgreSQL down while a revocation is pending: `writ status` and /metrics count it per provider
// with its age, and once it has failed longer than revocation_alert_after a single high-severity
// finding says a credential outlived its task.
TEST_F(CredsWritdAdmin, AFailingRevocationIsCountedAndBecomesOneHighSeverityFinding) {
  const int http_port = [] {
    Listener l(AF_INET);  // a free loopback port, released when l goes
    return static_cast<int>(l.port);
  }();
  absl::Status st = StartWritd(pg_.provider_conninfo(), "  revocation_alert_after: 2s\n",
                               {"--http", absl::StrCat("127.0.0.1:", http_port)});
  ASSERT_TRUE(st.ok()) << st << "\n" << w_.log();
  pid_t run = w_.WritAsync(
      {"run", "--agent", kAgent, "--intent", "pg-reader", "--", "/bin/sh", "-c", Script("exit 0")},
      "run");
  ASSERT_EQ(WaitFile(work_ + "/count"), "2\n");
  json iss = WaitIssue();
  ASSERT_FALSE(iss.is_null()) << w_.log();
  const std::string task = iss["agent"].value("task_id", "");
  const std::string role = iss["credential"].value("jti", "");
  auto status = [&] { return w_.Writ({"status"}).out; };
  EXPECT_THAT(status(), HasSubstr("revocations_failing_pg=0"));

  ASSERT_TRUE(pg_.StopServer().ok());
  ASSERT_EQ(w_.Writ({"revoke", task}).exit_code, 0);
  ASSERT_FALSE(WaitCred(task, "revoke_failed").is_null()) << w_.log();
  EXPECT_THAT(status(), HasSubstr("revocations_failing_pg=1"));
  const std::string metrics =
      RunCommand({"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", http_port, "/metrics")})
          .out;
  EXPECT_THAT(metrics, HasSubstr("writ_revocations_failing{provider=\"pg\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("writ_revocation_failing_oldest_seconds{provider=\"pg\"} "));

  json overdue = WaitCred(task, "revoke_overdue", std::chrono::seconds(20));
  ASSERT_FALSE(overdue.is_null()) << w_.log();
  EXPECT_EQ(overdue["credential"]["type"], "postgres_role");
  EXPECT_EQ(overdue["finding"]["severity"], "high");
  EXPECT_EQ(overdue["finding"]["rule"], "writ/credentials.revoke_overdue");
  EXPECT_THAT(overdue["finding"]["frameworks"].dump(), HasSubstr("OWASP-NHI7"));
  EXPECT_THAT(overdue["finding"].value("reason", ""), HasSubstr("connect"));
  EXPECT_THAT(status(), HasSubstr("revocations_failing_pg_oldest_s="));

  // PostgreSQL returns: the revocation completes, nothing is failing, and the finding was not
  // repeated.
  ASSERT_TRUE(pg_.StartServer().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (RoleExists(role) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_FALSE(RoleExists(role)) << w_.log();
  EXPECT_EQ(WaitDepth(0, std::chrono::seconds(15)), 0);
  EXPECT_THAT(status(), HasSubstr("revocations_failing_pg=0"));
  int findings = 0;
  for (const auto& e : w_.TaskEvents(task)) {
    findings += e.value("kind", "") == "credential" &&
                e["credential"].value("operation", "") == "revoke_overdue";
  }
  EXPECT_EQ(findings, 1);
  std::ofstream(work_ + "/go") << "";
  CmdResult r = w_.WaitAsync(run, "run");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// No PostgreSQL needed: a webhook provider issues without the network.
TEST(CredsWritdConfig, UnknownProviderIsRefusedAtStartAndAtReload) {
  if (geteuid() != 0) GTEST_SKIP() << "e2e needs root: writd loads BPF programs";
  const std::string providers =
      "credentials:\n  providers:\n    - {name: hook, type: webhook, url: "
      "\"http://127.0.0.1:9/caep\"}\n";
  const std::string good =
      "apiVersion: writ.dev/v1\nkind: Intent\nname: good\ncredentials:\n  - {provider: hook}\n";
  const std::string bad =
      "apiVersion: writ.dev/v1\nkind: Intent\nname: bad\ncredentials:\n  - {provider: hook}\n"
      "  - {provider: nosuch}\n";  // line 6
  {
    WritdInstance w;
    WritdInstance::Options o;
    o.policies["bad.yaml"] = bad;
    o.extra_config = providers;
    absl::Status st = w.Start(o);
    ASSERT_FALSE(st.ok()) << "writd started with an intent naming an unknown provider";
    EXPECT_THAT(
        std::string(st.message()),
        HasSubstr("bad.yaml:6: credentials[1].provider: unknown provider \"nosuch\" (configured in "
                  "writd's credentials.providers: hook)"));
  }
  WritdInstance w;
  WritdInstance::Options o;
  o.policies["good.yaml"] = good;
  o.extra_config = providers;
  ASSERT_TRUE(w.Start(o).ok()) << w.log();
  std::ofstream(w.policies_dir() + "/bad.yaml") << bad;
  CmdResult r = w.Writ({"policy", "reload"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("credentials[1].provider: unknown provider \"nosuch\""));
  // Nothing of the bad set was applied; the old set is in force and its credentials are issued.
  CmdResult run = w.Writ({"run", "--agent", kAgent, "--intent", "bad", "--", "/bin/true"});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("unknown intent \"bad\""));
  run = w.Writ({"run", "--agent", kAgent, "--intent", "good", "--", "/bin/sh", "-c",
                "test -r \"$WRIT_CREDENTIALS_DIR/hook\" && grep -q '^type=webhook$' "
                "\"$WRIT_CREDENTIALS_DIR/hook\""});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(w.Stop(), 0);
}

}  // namespace
}  // namespace writ::testlib
