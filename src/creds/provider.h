// External credential providers: short-lived credentials minted for a task in systems writ does not
// own (a PostgreSQL role, Vault leases, a webhook-notified relying party) and revoked when the task
// ends or violates its intent. Revocation goes through the durable Outbox (outbox.h), never
// directly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "creds/claims.h"

namespace writ::creds {

struct ProviderConfig {
  std::string name;  // unique; the outbox refers to providers by name across restarts
  std::string type;  // "postgres" | "vault" | "webhook"
  // postgres: conninfo (libpq, an admin role with CREATEROLE, docs/credentials.md); role_prefix
  //           (default "writ_")
  // vault:    addr (http(s)://host:port), token, prefix (e.g. "database/creds/app/"; "{task}" is
  //           replaced), ca_file (https: PEM CA bundle; default the system CA store)
  // webhook:  url (http(s)://...), issuer (SET iss), audience (SET aud), ca_file (as for vault)
  std::map<std::string, std::string> params;
  // postgres: privileges granted to the task role, each "<privileges> ON <object>", e.g.
  // "SELECT ON TABLE orders". From operator config, never from the agent.
  std::vector<std::string> grants;
};

struct IssuedCredential {
  std::string provider;  // ProviderConfig::name
  std::string kind;      // "postgres_role" | "vault_lease_prefix" | "webhook"
  std::string id;        // role name, lease prefix, url
  std::string secret;    // e.g. the role's password; empty when none. Never log it.
  absl::Time expires = absl::InfiniteFuture();
};

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  virtual const ProviderConfig& config() const = 0;
  // `per_task` may narrow or extend the provider's defaults (e.g. grants bound by the intent).
  // Unavailable means the provider was not reached and nothing was created (no revocation needed).
  virtual absl::StatusOr<IssuedCredential> Issue(const TaskClaims& task,
                                                 const ProviderConfig& per_task) = 0;
  // Idempotent: revoking a task that holds nothing (or was already revoked) is OK. Must be
  // derivable from the task id alone: after a restart, the outbox has nothing else.
  virtual absl::Status Revoke(const std::string& task_id, const std::string& reason) = 0;
  // Proves against the live system that this provider can revoke what it would issue (e.g. the
  // PostgreSQL admin's privileges), without leaving anything behind. PermissionDenied names the
  // missing privilege; Unavailable means the system could not be reached (a provider that must be
  // sure checks again before its first Issue). Default: nothing to check.
  virtual absl::Status CheckRevocable() { return absl::OkStatus(); }
};

// Builds a provider from config; InvalidArgument names the provider and the missing/bad field.
absl::StatusOr<std::unique_ptr<CredentialProvider>> MakeProvider(const ProviderConfig& config);

// The shape check MakeProvider applies to a postgres grant ("<privileges> ON <object>", no ;
// quotes, backslashes or comments); for validating intents' per-task grants at load time.
absl::Status ValidateGrant(const std::string& provider, const std::string& grant);

// The PostgreSQL role name for a task: prefix + sanitized id + short hash (unique, ≤ 63 bytes).
std::string PostgresRoleName(const std::string& prefix, const std::string& task_id);

}  // namespace writ::creds
