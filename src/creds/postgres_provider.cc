// PostgreSQL JIT roles (libpq): one LOGIN role per task, created and revoked by an admin role that
// is not a superuser, only CREATEROLE (docs/credentials.md, "PostgreSQL").
//
// What a CREATEROLE admin may do to the roles it creates differs by major version, and revocation
// needs more than CREATE ROLE does:
//   ALTER ROLE … NOLOGIN, DROP ROLE   CREATEROLE (15); CREATEROLE + ADMIN OPTION on the role (16+:
//   the
//                                     creator gets ADMIN OPTION automatically, without INHERIT or
//                                     SET)
//   pg_terminate_backend of a session the privileges of the session's role (or pg_signal_backend)
//   DROP OWNED BY                     the privileges of the role
// So before terminating, the admin GRANTs itself membership in the task role: on 15 a plain GRANT,
// which confers the role's privileges because the admin has INHERIT; on 16+ WITH INHERIT TRUE, SET
// FALSE (it holds ADMIN OPTION as the creator). pg_signal_backend alone is not enough: DROP OWNED
// still needs the privileges. CheckRevocable proves all of this on the live server, in a
// transaction it rolls back.
#include "creds/postgres_provider.h"

#include <libpq-fe.h>

#include <atomic>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "creds/jwt.h"
#include "creds/log.h"
#include "util/status_macros.h"

namespace writ::creds {
namespace {

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// Sessions of a role are terminated, then looked for again: a connection that passed authentication
// just before NOLOGIN committed may show up a moment later. Bounded: then the revocation fails and
// is retried by the outbox (the role is NOLOGIN meanwhile).
constexpr int kTerminateRounds = 5;
constexpr int kTerminateWaitMs =
    5000;  // pg_terminate_backend(pid, timeout): wait for the exit (14+)

std::string Escaped(PGconn* c, const std::string& s, bool identifier) {
  char* e = identifier ? PQescapeIdentifier(c, s.data(), s.size())
                       : PQescapeLiteral(c, s.data(), s.size());
  if (e == nullptr) return "";
  std::string out(e);
  PQfreemem(e);
  return out;
}

// "primary message (detail)" of a failed result, without libpq's "ERROR:  " prefix and newlines.
std::string ErrorText(PGconn* c, const PGresult* r) {
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (primary == nullptr) {
    std::string m = PQerrorMessage(c);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return m;
  }
  std::string out = primary;
  if (const char* d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL))
    absl::StrAppend(&out, " (", d, ")");
  return out;
}

bool InsufficientPrivilege(const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return state != nullptr && std::string(state) == "42501";
}

class PostgresProvider final : public CredentialProvider {
 public:
  explicit PostgresProvider(ProviderConfig c) : config_(std::move(c)) {
    auto it = config_.params.find("role_prefix");
    prefix_ = it == config_.params.end() ? "writ_" : it->second;
  }
  const ProviderConfig& config() const override { return config_; }

  absl::Status CheckRevocable() override {
    ASSIGN_OR_RETURN(PgConn conn, Connect());
    return Check(conn.get());
  }

  absl::StatusOr<IssuedCredential> Issue(const TaskClaims& task,
                                         const ProviderConfig& per_task) override {
    std::vector<std::string> grants = per_task.grants.empty() ? config_.grants : per_task.grants;
    for (const auto& g : grants) RETURN_IF_ERROR(ValidateGrant(config_.name, g));
    ASSIGN_OR_RETURN(PgConn conn, Connect());
    // Never issue what could not be revoked: the first issue proves the admin's privileges if the
    // check at start could not reach the server.
    if (!checked_.load()) RETURN_IF_ERROR(Check(conn.get()));
    IssuedCredential cred;
    cred.provider = config_.name;
    cred.kind = "postgres_role";
    cred.id = PostgresRoleName(prefix_, task.task_id);
    cred.secret = Base64UrlEncode(RandomBytes(24));
    cred.expires = task.deadline;
    std::string role = Escaped(conn.get(), cred.id, true);
    // VALID UNTIL makes the server itself refuse the password after the deadline, even if writd is
    // down.
    std::string until =
        task.deadline == absl::InfiniteFuture()
            ? "infinity"
            : absl::FormatTime("%Y-%m-%d %H:%M:%S+00", task.deadline, absl::UTCTimeZone());
    RETURN_IF_ERROR(Exec(conn.get(), "BEGIN"));
    std::string create = absl::StrCat("CREATE ROLE ", role, " LOGIN NOINHERIT PASSWORD ",
                                      Escaped(conn.get(), cred.secret, false), " VALID UNTIL ",
                                      Escaped(conn.get(), until, false));
    absl::Status st = Exec(conn.get(), create, "CREATE ROLE");  // never show the password
    for (size_t i = 0; st.ok() && i < grants.size(); ++i) {
      st = Exec(conn.get(), absl::StrCat("GRANT ", grants[i], " TO ", role));
    }
    if (!st.ok()) {
      (void)Exec(conn.get(), "ROLLBACK");
      return st;
    }
    RETURN_IF_ERROR(Exec(conn.get(), "COMMIT"));
    return cred;
  }

  // NOLOGIN → (membership) → terminate sessions → DROP OWNED → DROP ROLE; each step may run again.
  absl::Status Revoke(const std::string& task_id, const std::string& reason) override {
    ASSIGN_OR_RETURN(PgConn conn, Connect());
    PGconn* c = conn.get();
    const std::string name = PostgresRoleName(prefix_, task_id);
    ASSIGN_OR_RETURN(std::string oid, RoleOid(c, name));
    if (oid.empty()) return absl::OkStatus();  // never issued, or already revoked: idempotent
    ASSIGN_OR_RETURN(AdminRole admin, ReadAdmin(c));
    const std::string role = Escaped(c, name, true);
    // No new logins first, then cut live sessions, then remove privileges and the role.
    RETURN_IF_ERROR(Exec(c, absl::StrCat("ALTER ROLE ", role, " NOLOGIN")));
    if (!admin.superuser) RETURN_IF_ERROR(Exec(c, MembershipGrant(c, role)));
    RETURN_IF_ERROR(TerminateSessions(c, name, oid));
    for (const auto& g : config_.grants) {
      if (ValidateGrant(config_.name, g).ok()) {
        (void)Exec(c, absl::StrCat("REVOKE ", g, " FROM ", role));
      }
    }
    // DROP OWNED also revokes every privilege granted to the role in this database, including
    // per-task grants that a restarted daemon no longer remembers.
    RETURN_IF_ERROR(Exec(c, absl::StrCat("DROP OWNED BY ", role)));
    RETURN_IF_ERROR(Exec(c, absl::StrCat("DROP ROLE IF EXISTS ", role)));
    Log()->info("postgres provider '{}': dropped role {} of task {} ({})", config_.name, name,
                task_id, reason);
    return absl::OkStatus();
  }

 private:
  struct AdminRole {
    std::string name;
    bool superuser = false;
    bool createrole = false;
    bool inherit = false;
  };

  absl::StatusOr<PgConn> Connect() {
    auto it = config_.params.find("conninfo");
    if (it == config_.params.end() || it->second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("provider '", config_.name, "' (postgres): params.conninfo is required"));
    }
    std::string conninfo = it->second;
    if (conninfo.find("connect_timeout") == std::string::npos) conninfo += " connect_timeout=5";
    PgConn conn(PQconnectdb(conninfo.c_str()));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
      return absl::UnavailableError(
          absl::StrCat("provider '", config_.name,
                       "': connect: ", conn ? ErrorText(conn.get(), nullptr) : "out of memory"));
    }
    // A revocation must not hang the outbox behind a lock some other session holds.
    RETURN_IF_ERROR(Exec(conn.get(), "SET statement_timeout = '30s'"));
    RETURN_IF_ERROR(Exec(conn.get(), "SET lock_timeout = '10s'"));
    return conn;
  }

  // Runs one statement with text parameters; `shown` replaces the SQL in errors (it may hold a
  // secret).
  absl::StatusOr<PgResult> Run(PGconn* c, const std::string& sql,
                               const std::vector<std::string>& params = {},
                               const char* shown = nullptr) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PgResult r(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.empty() ? nullptr : values.data(), nullptr, nullptr, 0));
    ExecStatusType s = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      std::string msg = absl::StrCat("provider '", config_.name, "': ", shown ? shown : sql.c_str(),
                                     ": ", ErrorText(c, r.get()));
      if (PQstatus(c) != CONNECTION_OK) return absl::UnavailableError(msg);
      if (InsufficientPrivilege(r.get())) return absl::PermissionDeniedError(msg);
      return absl::InternalError(msg);
    }
    return r;
  }
  absl::Status Exec(PGconn* c, const std::string& sql, const char* shown = nullptr) {
    return Run(c, sql, {}, shown).status();
  }

  absl::StatusOr<AdminRole> ReadAdmin(PGconn* c) {
    ASSIGN_OR_RETURN(PgResult r, Run(c,
                                     "SELECT current_user, rolsuper, rolcreaterole, rolinherit "
                                     "FROM pg_roles WHERE rolname = current_user"));
    if (PQntuples(r.get()) != 1) {
      return absl::InternalError(
          absl::StrCat("provider '", config_.name, "': the admin role is not in pg_roles"));
    }
    auto yes = [&](int col) { return std::string(PQgetvalue(r.get(), 0, col)) == "t"; };
    return AdminRole{PQgetvalue(r.get(), 0, 0), yes(1), yes(2), yes(3)};
  }

  // The oid of the role, "" when there is none.
  absl::StatusOr<std::string> RoleOid(PGconn* c, const std::string& name) {
    ASSIGN_OR_RETURN(PgResult r, Run(c, "SELECT oid FROM pg_roles WHERE rolname = $1", {name}));
    return PQntuples(r.get()) > 0 ? std::string(PQgetvalue(r.get(), 0, 0)) : std::string();
  }

  // The admin's membership in a task role it created, giving it the role's privileges (not SET
  // ROLE).
  static std::string MembershipGrant(PGconn* c, const std::string& role) {
    if (PQserverVersion(c) >= 160000) {
      return absl::StrCat("GRANT ", role, " TO CURRENT_USER WITH INHERIT TRUE, SET FALSE");
    }
    return absl::StrCat("GRANT ", role, " TO CURRENT_USER");
  }

  absl::Status TerminateSessions(PGconn* c, const std::string& name, const std::string& oid) {
    // usesysid, not usename: a session keeps its role's oid, and the name is only a join.
    const std::string terminate =
        PQserverVersion(c) >= 140000
            ? absl::StrCat("pg_terminate_backend(pid, ", kTerminateWaitMs, ")")
            : std::string("pg_terminate_backend(pid)");
    const std::string sql = absl::StrCat(
        "SELECT count(*), count(*) FILTER (WHERE NOT ", terminate,
        ") FROM pg_stat_activity WHERE usesysid = $1::oid AND pid <> pg_backend_pid()");
    int64_t left = 0;
    for (int round = 0; round < kTerminateRounds; ++round) {
      ASSIGN_OR_RETURN(PgResult r, Run(c, sql, {oid}));
      left = std::stoll(PQgetvalue(r.get(), 0, 0));
      if (left == 0) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * (round + 1)));
    }
    return absl::UnavailableError(
        absl::StrCat("provider '", config_.name, "': ", left, " session(s) of role ", name,
                     " still alive after ", kTerminateRounds, " rounds of pg_terminate_backend"));
  }

  absl::Status Refused(const AdminRole& a, const std::string& what) const {
    return absl::PermissionDeniedError(
        absl::StrCat("provider '", config_.name, "': admin role \"", a.name,
                     "\" could not revoke the credentials it issues: ", what));
  }

  // Proves on the live server that the admin can do every step of Revoke (and grant the configured
  // grants), in a transaction that is rolled back: nothing stays behind.
  absl::Status Check(PGconn* c) {
    ASSIGN_OR_RETURN(AdminRole a, ReadAdmin(c));
    const int version = PQserverVersion(c);
    if (a.superuser) {
      Log()->warn(
          "postgres provider '{}': admin role \"{}\" is a superuser; a CREATEROLE role is enough "
          "(docs/credentials.md)",
          config_.name, a.name);
    } else if (!a.createrole) {
      return Refused(a,
                     absl::StrCat("it lacks CREATEROLE, which ALTER ROLE … NOLOGIN and DROP ROLE "
                                  "of the task roles need (ALTER ROLE ",
                                  Escaped(c, a.name, true), " CREATEROLE)"));
    } else if (version < 160000 && !a.inherit) {
      return Refused(
          a, absl::StrCat("it is NOINHERIT: before PostgreSQL 16 the membership it takes in a task "
                          "role gives it that role's privileges only with INHERIT, and "
                          "pg_terminate_backend of the role's sessions and DROP OWNED BY need them "
                          "(ALTER ROLE ",
                          Escaped(c, a.name, true), " INHERIT)"));
    }
    const std::string probe_name =
        absl::StrCat(prefix_.substr(0, 12), "probe_", absl::BytesToHexString(RandomBytes(6)));
    const std::string probe = Escaped(c, probe_name, true);
    RETURN_IF_ERROR(Exec(c, "BEGIN"));
    absl::Status st = [&]() -> absl::Status {
      auto step = [&](const std::string& sql, const std::string& need) -> absl::Status {
        absl::Status s = Exec(c, sql);
        if (s.ok() || absl::IsUnavailable(s)) return s;
        return Refused(a, absl::StrCat(need, ": ", s.message()));
      };
      RETURN_IF_ERROR(
          step(absl::StrCat("CREATE ROLE ", probe, " NOLOGIN"), "it cannot create roles"));
      for (const auto& g : config_.grants) {
        RETURN_IF_ERROR(step(absl::StrCat("GRANT ", g, " TO ", probe),
                             absl::StrCat("it cannot grant '", g,
                                          "' (it needs that privilege WITH GRANT OPTION, or to own "
                                          "the object)")));
      }
      RETURN_IF_ERROR(step(absl::StrCat("ALTER ROLE ", probe, " NOLOGIN"),
                           "it cannot alter the roles it creates"));
      if (!a.superuser) {
        RETURN_IF_ERROR(step(MembershipGrant(c, probe),
                             "it cannot take membership in the roles it creates, which "
                             "pg_terminate_backend and DROP OWNED BY need"));
        ASSIGN_OR_RETURN(PgResult r, Run(c, "SELECT pg_has_role($1, 'USAGE')", {probe_name}));
        if (std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
          return Refused(a,
                         "its membership in a task role does not give it the role's privileges, "
                         "which pg_terminate_backend and DROP OWNED BY need");
        }
      }
      RETURN_IF_ERROR(step(absl::StrCat("DROP OWNED BY ", probe),
                           "it cannot drop what the task roles own (DROP OWNED BY)"));
      return step(absl::StrCat("DROP ROLE ", probe), "it cannot drop the roles it creates");
    }();
    absl::Status rb = Exec(c, "ROLLBACK");
    RETURN_IF_ERROR(st);
    RETURN_IF_ERROR(rb);
    if (!checked_.exchange(true)) {
      Log()->info("postgres provider '{}': admin role \"{}\" can revoke (PostgreSQL {}.{})",
                  config_.name, a.name, version / 10000, version % 10000);
    }
    return absl::OkStatus();
  }

  const ProviderConfig config_;
  std::string prefix_;
  std::atomic<bool> checked_{false};
};

}  // namespace

std::unique_ptr<CredentialProvider> NewPostgresProvider(ProviderConfig config) {
  return std::make_unique<PostgresProvider>(std::move(config));
}

}  // namespace writ::creds
