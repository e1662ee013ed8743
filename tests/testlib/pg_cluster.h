// A temporary PostgreSQL cluster for privileged tests: initdb as user postgres into a temp dir, started
// on a unix socket in that dir (listen_addresses='', no TCP), SCRAM passwords so a login proves the
// password. A table `orders` with two rows exists. Needs root (to run as postgres) and the Debian
// postgresql package: SkipReason() says why not. The destructor stops the server and removes the dir.
#pragma once

#include <libpq-fe.h>

#include <string>

#include "absl/status/status.h"

namespace writ::testlib {

class PgCluster {
 public:
  PgCluster() = default;
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // "" when a cluster can be created here, else why not (for GTEST_SKIP).
  static std::string SkipReason();

  // initdb + start + the `orders` table.
  absl::Status Create();
  // Stops the server (immediate: like a crash or an outage), keeping the data; StartServer brings it back.
  absl::Status StopServer();
  absl::Status StartServer();
  bool running() const { return running_; }

  // libpq conninfo of the superuser `postgres`.
  const std::string& admin_conninfo() const { return admin_; }
  // conninfo for user/password (connect_timeout=5).
  std::string Login(const std::string& user, const std::string& password) const;
  // First value of the first row of `sql` on `c`; "OK" for a command; "ERROR: ..." on failure.
  static std::string Query(PGconn* c, const char* sql);
  // Query on a fresh admin connection.
  std::string AdminQuery(const std::string& sql) const;

  const std::string& dir() const { return dir_; }
  int port() const { return port_; }

 private:
  std::string bin_, dir_, admin_;
  std::string admin_password_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace writ::testlib
