// writ::creds public API: the CredentialService facade the daemon owns.
//
// It issues task credentials (JWT-SVIDs over the SPIFFE Workload API, external provider
// credentials), revokes them (task end, violation, by hand; external ones through a durable
// outbox), answers introspection, and reports every credential operation through an event hook.
//
// State under <state_dir>: keys/ (0600 PEM signing keys), jwks.json, revoked.db, outbox.db.
// Runtime under <run_dir>: workload.sock.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "creds/claims.h"
#include "creds/issuer.h"
#include "creds/keystore.h"
#include "creds/outbox.h"
#include "creds/provider.h"
#include "creds/redact.h"
#include "creds/revocation_store.h"
#include "creds/workload_api.h"
#include "http/server.h"

namespace writ::creds {

struct CredentialConfig {
  std::string state_dir;
  std::string run_dir;
  std::string trust_domain;  // e.g. example.org
  // `iss`; default "spiffe://<trust_domain>". An https URL (https://host[:port], no path) is also
  // where relying parties find the discovery document: its jwks_uri and endpoints derive from it
  // and its host joins http_hosts.
  std::string issuer;
  // Loopback unless http_tls is set; empty disables the HTTP endpoints.
  std::string http_addr = "127.0.0.1:8181";
  // Host header names the HTTP server answers to besides http_addr's host and localhost (421 else).
  std::vector<std::string> http_hosts;
  http::TlsOptions http_tls;  // cert_file empty: plain HTTP
  // "/introspect", "/revoke": only for clients with a verified certificate (needs a client CA), and
  // if http_client_ids is not empty only for those identities (creds/http_endpoints.h).
  std::vector<std::string> http_client_auth;
  std::vector<std::string> http_client_ids;
  absl::Duration token_ttl = absl::Minutes(5);
  absl::Duration key_rotation = absl::Hours(24);
  std::vector<ProviderConfig> providers;
  // Workload API caller → task. Empty disables the Workload API socket.
  TaskLookup task_lookup;
  std::string workload_socket;                            // default <run_dir>/workload.sock
  absl::Duration maintenance_period = absl::Seconds(30);  // key rotation check, revocation pruning
  // An external revocation still failing this long after it was queued is reported once as a
  // `revoke_overdue` event (writd: a high-severity finding). Zero disables the report.
  absl::Duration revocation_alert_after = absl::Minutes(5);
};

// Failing external revocations at one provider (attempted at least once, not acknowledged).
struct ProviderRevocationHealth {
  std::string provider;
  int64_t failing = 0;
  absl::Duration oldest_age = absl::ZeroDuration();  // since the oldest failing one was queued
};

// One credential operation, for the daemon's `credential` events.
struct CredentialEvent {
  std::string type;      // "jwt_svid" | "postgres_role" | "vault_lease_prefix" | "webhook"
  std::string jti;       // token id; for external credentials the credential id (role, prefix, url)
  std::string provider;  // "writ" for JWT-SVIDs, else ProviderConfig::name
  // "issue" | "revoke" | "revoke_queued" | "revoke_failed" | "revoke_overdue" (failing for longer
  // than revocation_alert_after: once per revocation)
  std::string operation;
  absl::Time expires = absl::InfiniteFuture();
  std::string task_id;
  std::string detail;  // reason, or the error of a failed attempt
};

class CredentialService {
 public:
  static absl::StatusOr<std::unique_ptr<CredentialService>> Start(CredentialConfig config);
  ~CredentialService();
  void Stop();  // idempotent

  // Called from service threads (Workload API, HTTP, outbox); must not block for long.
  void SetEventHook(std::function<void(const CredentialEvent&)> hook);

  // Issues external credentials for a task. Each request names a configured provider
  // (ProviderConfig::name) and may carry per-task grants; secrets in the result go to the task's
  // environment, never to logs.
  absl::StatusOr<std::vector<IssuedCredential>> OnTaskStart(
      const TaskClaims& task, const std::vector<ProviderConfig>& requests = {});
  // Task ended (exit, completion, deadline): same as Revoke.
  absl::StatusOr<std::vector<std::string>> OnTaskEnd(const std::string& task_id,
                                                     const std::string& reason);
  // Revokes the task's JWT-SVIDs (returns their jtis) and queues revocation at every external
  // provider that issued it something, the latter even when recording the former fails (that error
  // is returned).
  absl::StatusOr<std::vector<std::string>> Revoke(const std::string& task_id,
                                                  const std::string& reason);
  // The violation fast path: the task's JWT-SVIDs are inactive (introspection, Workload API) from
  // this call on, with no disk write and no event; Revoke must follow (durable record, events,
  // providers).
  void MarkRevoked(const std::string& task_id) { issuer_->MarkRevoked(task_id); }
  // RFC 7662 response JSON.
  std::string Introspect(std::string_view token) const;
  // Direct minting (e.g. for the control plane); the Workload API is the normal path.
  absl::StatusOr<Svid> Mint(const TaskClaims& task, std::vector<std::string> audience);

  // Event `type` of a configured provider's credentials ("postgres_role", ...); "external" if
  // unknown.
  std::string ProviderKind(const std::string& provider) const;

  absl::StatusOr<int64_t> OutboxDepth() const;
  // For status and metrics: one entry per configured provider (failing 0 when all is well), then
  // any provider the outbox still holds failing revocations for that is no longer configured.
  absl::StatusOr<std::vector<ProviderRevocationHealth>> FailingRevocations() const;
  std::string JwksJson() const;
  // Workload API streams open and refused (caps per task and in total); zeros when it is off.
  WorkloadApiStats workload_stats() const {
    return workload_ ? workload_->stats() : WorkloadApiStats{};
  }
  // The HTTP server (null when disabled): other modules may AddRoute (e.g. /metrics).
  http::Server* http_server() const { return http_.get(); }
  // The https issuer when one is set, else http(s)://<listen address>.
  std::string http_base_url() const;

 private:
  explicit CredentialService(CredentialConfig c) : config_(std::move(c)) {}
  absl::Status Init();
  void Emit(const CredentialEvent& e) const;

  const CredentialConfig config_;
  mutable absl::Mutex hook_mu_;
  std::function<void(const CredentialEvent&)> hook_ ABSL_GUARDED_BY(hook_mu_);
  // Declaration order = construction order; destruction runs the other way (servers before stores).
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<RevocationStore> revocations_;
  std::unique_ptr<Issuer> issuer_;
  std::vector<std::unique_ptr<CredentialProvider>> providers_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<WorkloadApiServer> workload_;
  absl::Notification stop_;
  std::thread maintenance_;
  bool stopped_ = false;
};

}  // namespace writ::creds
