#include "testlib/pg_cluster.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace writ::testlib {
namespace {

std::string FindPgBin() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(e.path() / "bin/initdb")) return (e.path() / "bin").string();
  }
  return "";
}

}  // namespace

std::string PgCluster::SkipReason() {
  if (geteuid() != 0) return "needs root to run the cluster as user postgres";
  if (FindPgBin().empty()) return "no /usr/lib/postgresql/*/bin/initdb (install postgresql)";
  if (getpwnam("postgres") == nullptr) return "no 'postgres' user";
  return "";
}

absl::Status PgCluster::Create() {
  if (std::string why = SkipReason(); !why.empty()) return absl::FailedPreconditionError(why);
  bin_ = FindPgBin();
  passwd* pw = getpwnam("postgres");
  char tmpl[] = "/tmp/writ-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  dir_ = tmpl;
  if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown cluster dir");
  // Other uids (a task's) must reach the socket in dir_.
  chmod(dir_.c_str(), 0755);
  admin_password_ = absl::StrCat("admin-", getpid(), "-", rand());
  std::ofstream(dir_ + "/pw") << admin_password_ << "\n";
  if (chown((dir_ + "/pw").c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError("chown pwfile");
  // Any port number works: with listen_addresses='' it only names the socket file; pick one from our pid
  // so parallel runs do not collide.
  port_ = 20000 + getpid() % 20000;
  std::string initdb = absl::StrCat("runuser -u postgres -- ", bin_, "/initdb -D ", dir_,
                                    "/data -U postgres --auth=scram-sha-256 --pwfile=", dir_,
                                    "/pw -E UTF8 > ", dir_, "/initdb.log 2>&1");
  if (std::system(initdb.c_str()) != 0) return absl::InternalError("failed: " + initdb);
  if (absl::Status st = StartServer(); !st.ok()) return st;
  admin_ = absl::StrCat("host=", dir_, " port=", port_, " user=postgres password=", admin_password_,
                        " dbname=postgres");
  PGconn* c = PQconnectdb(admin_.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string err = PQerrorMessage(c);
    PQfinish(c);
    return absl::InternalError("admin login: " + err);
  }
  PQclear(PQexec(c, "CREATE TABLE orders(id int); INSERT INTO orders VALUES (1), (2);"));
  PQfinish(c);
  return absl::OkStatus();
}

absl::Status PgCluster::StartServer() {
  std::string start = absl::StrCat("runuser -u postgres -- ", bin_, "/pg_ctl -D ", dir_, "/data -l ", dir_,
                                   "/server.log -w -t 60 -o \"-k ", dir_, " -p ", port_,
                                   " -c listen_addresses=''\" start > /dev/null 2>&1");
  if (std::system(start.c_str()) != 0) return absl::InternalError("failed: " + start);
  running_ = true;
  return absl::OkStatus();
}

absl::Status PgCluster::StopServer() {
  std::string stop = absl::StrCat("runuser -u postgres -- ", bin_, "/pg_ctl -D ", dir_,
                                  "/data -m immediate -w -t 30 stop > /dev/null 2>&1");
  if (std::system(stop.c_str()) != 0) return absl::InternalError("failed: " + stop);
  running_ = false;
  return absl::OkStatus();
}

PgCluster::~PgCluster() {
  if (running_) (void)StopServer();
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

std::string PgCluster::Login(const std::string& user, const std::string& password) const {
  return absl::StrCat("host=", dir_, " port=", port_, " user=", user, " password=", password,
                      " dbname=postgres connect_timeout=5");
}

std::string PgCluster::Query(PGconn* c, const char* sql) {
  PGresult* r = PQexec(c, sql);
  std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0)
                    : PQresultStatus(r) == PGRES_COMMAND_OK                  ? "OK"
                                                                             : "ERROR: " + std::string(PQerrorMessage(c));
  PQclear(r);
  return out;
}

std::string PgCluster::AdminQuery(const std::string& sql) const {
  PGconn* c = PQconnectdb(admin_.c_str());
  std::string out = PQstatus(c) == CONNECTION_OK ? Query(c, sql.c_str()) : "ERROR: " + std::string(PQerrorMessage(c));
  PQfinish(c);
  return out;
}

}  // namespace writ::testlib
