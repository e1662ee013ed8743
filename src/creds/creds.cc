#include "creds/creds.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "creds/http_endpoints.h"
#include "creds/log.h"
#include "util/status_macros.h"

namespace writ::creds {
namespace {
// Event `type` for a provider's credentials (providers_ holds the config types).
std::string KindOf(const std::vector<std::unique_ptr<CredentialProvider>>& providers,
                   const std::string& name) {
  for (const auto& p : providers) {
    if (p->config().name != name) continue;
    const std::string& t = p->config().type;
    if (t == "postgres") return "postgres_role";
    if (t == "vault") return "vault_lease_prefix";
    return t;
  }
  return "external";
}
}  // namespace

absl::StatusOr<std::unique_ptr<CredentialService>> CredentialService::Start(
    CredentialConfig config) {
  if (config.state_dir.empty())
    return absl::InvalidArgumentError("creds config: state_dir is required");
  if (config.trust_domain.empty() || config.trust_domain.find('/') != std::string::npos ||
      config.trust_domain.find(':') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("creds config: trust_domain '",
                                                   config.trust_domain,
                                                   "' must be a bare name like example.org"));
  }
  if (config.issuer.empty()) config.issuer = "spiffe://" + config.trust_domain;
  if (absl::StartsWith(config.issuer, "https://")) {
    auto host = HttpsIssuerHost(config.issuer);
    if (!host.ok())
      return absl::InvalidArgumentError(absl::StrCat("creds config: ", host.status().message()));
    // The Host header relying parties send when they fetch from the issuer (an IPv6 literal is the
    // listen address, already accepted).
    if (host->front() != '[') config.http_hosts.push_back(*host);
  }
  if (!config.http_client_auth.empty() && config.http_tls.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "creds config: client certificate checks (http client_auth) need a client CA "
        "(tls.client_ca)");
  }
  if (config.task_lookup && config.run_dir.empty() && config.workload_socket.empty()) {
    return absl::InvalidArgumentError(
        "creds config: run_dir (or workload_socket) is required for the Workload API");
  }
  if (config.workload_socket.empty() && !config.run_dir.empty()) {
    config.workload_socket = config.run_dir + "/workload.sock";
  }
  std::unique_ptr<CredentialService> s(new CredentialService(std::move(config)));
  absl::Status st = s->Init();
  if (!st.ok()) {
    s->Stop();
    return st;
  }
  return s;
}

absl::Status CredentialService::Init() {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("creds: mkdir ", config_.state_dir, ": ", ec.message()));
  ::chmod(config_.state_dir.c_str(), 0700);
  if (!config_.run_dir.empty()) std::filesystem::create_directories(config_.run_dir, ec);

  KeyStoreOptions ko;
  ko.state_dir = config_.state_dir;
  ko.rotation_period = config_.key_rotation;
  ko.max_token_ttl = config_.token_ttl;
  ASSIGN_OR_RETURN(keys_, KeyStore::Open(ko));
  ASSIGN_OR_RETURN(revocations_, RevocationStore::Open(config_.state_dir + "/revoked.db"));
  IssuerOptions io;
  io.issuer = config_.issuer;
  io.default_ttl = config_.token_ttl;
  issuer_ = std::make_unique<Issuer>(io, keys_.get(), revocations_.get());

  OutboxOptions oo;
  oo.path = config_.state_dir + "/outbox.db";
  oo.overdue_after = config_.revocation_alert_after;
  ASSIGN_OR_RETURN(outbox_, Outbox::Open(oo));
  for (const auto& pc : config_.providers) {
    for (const auto& existing : providers_) {
      if (existing->config().name == pc.name) {
        return absl::InvalidArgumentError(
            absl::StrCat("creds config: provider name '", pc.name, "' is used twice"));
      }
    }
    ASSIGN_OR_RETURN(auto p, MakeProvider(pc));
    // A provider that could not revoke what it issues is refused: better no credential than one
    // that outlives its task. One that cannot be reached now is checked again before it issues
    // anything.
    if (absl::Status st = p->CheckRevocable(); absl::IsUnavailable(st)) {
      Log()->warn(
          "creds: provider '{}': revocation privileges not checked now ({}); checked before "
          "its first issue",
          pc.name, std::string(st.message()));
    } else if (!st.ok()) {
      return st;
    }
    outbox_->Register(p.get());
    providers_.push_back(std::move(p));
  }
  outbox_->SetResultHook([this](const OutboxResult& r) {
    Emit({KindOf(providers_, r.provider), r.task_id, r.provider,
          r.status.ok() ? "revoke" : "revoke_failed", absl::InfiniteFuture(), r.task_id,
          r.status.ok() ? "" : std::string(r.status.message())});
  });
  outbox_->SetOverdueHook([this](const OverdueRevocation& o) {
    Emit({KindOf(providers_, o.provider), o.task_id, o.provider, "revoke_overdue",
          absl::InfiniteFuture(), o.task_id,
          absl::StrCat("revocation (", o.reason, ") queued ",
                       absl::FormatTime(absl::RFC3339_sec, o.queued, absl::UTCTimeZone()),
                       " still failing after ", o.attempts,
                       " attempts; last error: ", o.last_error)});
  });
  outbox_->Start();

  if (!config_.http_addr.empty()) {
    http::ServerOptions ho;
    ho.address = config_.http_addr;
    ho.allowed_hosts = config_.http_hosts;
    ho.tls = config_.http_tls;
    ASSIGN_OR_RETURN(http_, http::Server::Create(ho));
    RETURN_IF_ERROR(http_->Start());
    EndpointOptions eo;
    eo.base_url = http_base_url();
    eo.client_auth = config_.http_client_auth;
    eo.client_ids = config_.http_client_ids;
    eo.on_token_revoked = [this](const std::string& jti) {
      Emit({"jwt_svid", jti, "writ", "revoke", absl::InfiniteFuture(), "", "revocation_endpoint"});
    };
    RegisterEndpoints(http_.get(), issuer_.get(), keys_.get(), eo);
  }

  if (config_.task_lookup) {
    WorkloadApiOptions wo;
    wo.socket_path = config_.workload_socket;
    wo.trust_domain = config_.trust_domain;
    wo.lookup = config_.task_lookup;
    wo.on_issued = [this](const TaskClaims& t, const Svid& s) {
      Emit({"jwt_svid", s.jti, "writ", "issue", s.expires_at, t.task_id, ""});
    };
    ASSIGN_OR_RETURN(workload_, WorkloadApiServer::Start(wo, issuer_.get(), keys_.get()));
  }

  maintenance_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(config_.maintenance_period)) {
      if (auto k = keys_->Current(); !k.ok())
        Log()->error("creds maintenance: keystore: {}", k.status().ToString());
      if (auto p = revocations_->Prune(absl::Now()); !p.ok()) {
        Log()->error("creds maintenance: prune: {}", p.ToString());
      }
    }
  });
  Log()->info("creds: started (issuer {}, http {}, workload api {})", config_.issuer,
              http_ ? http_base_url() : "off", workload_ ? config_.workload_socket : "off");
  return absl::OkStatus();
}

CredentialService::~CredentialService() { Stop(); }

void CredentialService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (maintenance_.joinable()) maintenance_.join();
  if (workload_) workload_->Stop();
  if (http_) http_->Stop();
  if (outbox_) outbox_->Stop();
}

void CredentialService::SetEventHook(std::function<void(const CredentialEvent&)> hook) {
  absl::MutexLock l(&hook_mu_);
  hook_ = std::move(hook);
}

void CredentialService::Emit(const CredentialEvent& e) const {
  std::function<void(const CredentialEvent&)> hook;
  {
    absl::MutexLock l(&hook_mu_);
    hook = hook_;
  }
  if (hook) hook(e);
}

absl::StatusOr<std::vector<IssuedCredential>> CredentialService::OnTaskStart(
    const TaskClaims& task, const std::vector<ProviderConfig>& requests) {
  std::vector<IssuedCredential> out;
  for (const auto& req : requests) {
    CredentialProvider* p = nullptr;
    for (const auto& cand : providers_) {
      if (cand->config().name == req.name) p = cand.get();
    }
    if (p == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("task ", task.task_id, ": provider '", req.name, "' is not configured"));
    }
    // Remember before issuing: if we crash between the two, revocation is still attempted (and is a
    // no-op).
    RETURN_IF_ERROR(outbox_->RecordIssued(p->config().name, task.task_id));
    auto cred = p->Issue(task, req);
    if (!cred.ok() && absl::IsUnavailable(cred.status())) {
      // Unavailable = the provider could not be reached: nothing was created, nothing to revoke
      // later.
      if (absl::Status f = outbox_->ForgetIssued(p->config().name, task.task_id); !f.ok()) {
        Log()->warn("creds: task {}: forget issue record at '{}': {}", task.task_id, req.name,
                    f.ToString());
      }
    }
    if (!cred.ok()) {
      // Whatever was issued so far is revoked by the caller's Revoke/OnTaskEnd through the outbox.
      return absl::Status(cred.status().code(),
                          absl::StrCat("task ", task.task_id, ": issue at '", req.name,
                                       "': ", cred.status().message()));
    }
    Emit({cred->kind, cred->id, cred->provider, "issue", cred->expires, task.task_id, ""});
    out.push_back(std::move(*cred));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> CredentialService::OnTaskEnd(const std::string& task_id,
                                                                      const std::string& reason) {
  return Revoke(task_id, reason.empty() ? "task_ended" : reason);
}

absl::StatusOr<std::vector<std::string>> CredentialService::Revoke(const std::string& task_id,
                                                                   const std::string& reason) {
  // The two stores are independent: a failed JWT-SVID record (the task stays revoked in memory)
  // must not keep the external credentials (database roles, leases) from being revoked too.
  absl::StatusOr<std::vector<std::string>> jtis = issuer_->Revoke(task_id, reason);
  if (jtis.ok()) {
    for (const auto& j : *jtis)
      Emit({"jwt_svid", j, "writ", "revoke", absl::InfiniteFuture(), task_id, reason});
  }
  ASSIGN_OR_RETURN(std::vector<std::string> queued, outbox_->EnqueueTask(task_id, reason));
  for (const auto& p : queued)
    Emit({KindOf(providers_, p), task_id, p, "revoke_queued", absl::InfiniteFuture(), task_id,
          reason});
  return jtis;
}

std::string CredentialService::Introspect(std::string_view token) const {
  return issuer_->Introspect(token).dump();
}

absl::StatusOr<Svid> CredentialService::Mint(const TaskClaims& task,
                                             std::vector<std::string> audience) {
  ASSIGN_OR_RETURN(Svid s, issuer_->Mint(task, std::move(audience)));
  Emit({"jwt_svid", s.jti, "writ", "issue", s.expires_at, task.task_id, ""});
  return s;
}

std::string CredentialService::ProviderKind(const std::string& provider) const {
  return KindOf(providers_, provider);
}

absl::StatusOr<int64_t> CredentialService::OutboxDepth() const { return outbox_->Depth(); }

absl::StatusOr<std::vector<ProviderRevocationHealth>> CredentialService::FailingRevocations()
    const {
  ASSIGN_OR_RETURN(std::vector<FailingAtProvider> failing, outbox_->Failing());
  const absl::Time now = absl::Now();
  std::vector<ProviderRevocationHealth> out;
  for (const auto& p : providers_) out.push_back({p->config().name});
  for (const auto& f : failing) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& h) { return h.provider == f.provider; });
    if (it == out.end()) it = out.insert(out.end(), ProviderRevocationHealth{f.provider});
    it->failing = f.count;
    it->oldest_age = std::max(absl::ZeroDuration(), now - f.oldest_queued);
  }
  return out;
}

std::string CredentialService::JwksJson() const { return keys_->JwksJson(); }

std::string CredentialService::http_base_url() const {
  if (!http_) return "";
  if (absl::StartsWith(config_.issuer, "https://")) return config_.issuer;
  return absl::StrCat(http_->scheme(), "://", http_->address());
}

}  // namespace writ::creds
