// Provider construction, grant validation, role names; Vault lease-prefix revocation and CAEP-style
// webhook notification. The PostgreSQL provider is in postgres_provider.cc.
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "creds/jwt.h"
#include "creds/log.h"
#include "creds/postgres_provider.h"
#include "creds/provider.h"
#include "http/client.h"
#include "nlohmann/json.hpp"
#include "util/status_macros.h"

namespace writ::creds {
namespace {

absl::StatusOr<std::string> Param(const ProviderConfig& c, const std::string& key) {
  auto it = c.params.find(key);
  if (it == c.params.end() || it->second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("provider '", c.name, "' (", c.type, "): params.", key, " is required"));
  }
  return it->second;
}

// ---- Grants (postgres)
// ---------------------------------------------------------------------------------

absl::Status CheckGrant(const std::string& provider, const std::string& g) {
  // Grants come from operator config, but they are spliced into SQL: refuse anything that could end
  // the statement or start a comment, and require the "<privileges> ON <object>" shape.
  if (g.find_first_of(";\\'") != std::string::npos || g.find("--") != std::string::npos ||
      g.find("/*") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("provider '", provider, "': grant '", g,
                                                   "' contains ; quote backslash or a comment"));
  }
  std::string upper = absl::AsciiStrToUpper(g);
  if (upper.find(" ON ") == std::string::npos || upper.find(" TO ") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("provider '", provider, "': grant '", g,
                                                   "' must look like '<privileges> ON <object>'"));
  }
  return absl::OkStatus();
}

// ---- Vault
// -----------------------------------------------------------------------------------------------

class VaultProvider final : public CredentialProvider {
 public:
  explicit VaultProvider(ProviderConfig c) : config_(std::move(c)) {}
  const ProviderConfig& config() const override { return config_; }

  // Vault secrets are obtained by the task itself (e.g. Vault's JWT auth with its JWT-SVID); what
  // writ owns is cutting them off. Issue only reports which lease prefix will be revoked.
  absl::StatusOr<IssuedCredential> Issue(const TaskClaims& task, const ProviderConfig&) override {
    ASSIGN_OR_RETURN(std::string prefix, Prefix(task.task_id));
    return IssuedCredential{config_.name, "vault_lease_prefix", prefix, "", task.deadline};
  }

  absl::Status Revoke(const std::string& task_id, const std::string& reason) override {
    ASSIGN_OR_RETURN(std::string addr, Param(config_, "addr"));
    ASSIGN_OR_RETURN(std::string token, Param(config_, "token"));
    ASSIGN_OR_RETURN(std::string prefix, Prefix(task_id));
    while (!addr.empty() && addr.back() == '/') addr.pop_back();
    http::ClientRequest req;
    req.method = "PUT";
    req.url = absl::StrCat(addr, "/v1/sys/leases/revoke-prefix/", prefix);
    if (auto it = config_.params.find("ca_file"); it != config_.params.end())
      req.ca_file = it->second;
    req.headers = {{"X-Vault-Token", token}, {"Content-Type", "application/json"}};
    req.body = "{}";
    ASSIGN_OR_RETURN(http::ClientResponse resp, http::Fetch(req));
    if (resp.status != 200 && resp.status != 204) {
      return absl::UnavailableError(absl::StrCat("provider '", config_.name,
                                                 "': vault revoke-prefix ", prefix, ": HTTP ",
                                                 resp.status, " ", resp.body.substr(0, 200)));
    }
    Log()->info("vault provider '{}': revoked lease prefix {} of task {} ({})", config_.name,
                prefix, task_id, reason);
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<std::string> Prefix(const std::string& task_id) const {
    ASSIGN_OR_RETURN(std::string p, Param(config_, "prefix"));
    p = absl::StrReplaceAll(p, {{"{task}", task_id}});
    if (p.find("..") != std::string::npos || p.front() == '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("provider '", config_.name, "': prefix '", p, "' is not relative"));
    }
    return p;
  }
  const ProviderConfig config_;
};

// ---- Webhook (CAEP session-revoked)
// --------------------------------------------------------------------------

class WebhookProvider final : public CredentialProvider {
 public:
  explicit WebhookProvider(ProviderConfig c) : config_(std::move(c)) {}
  const ProviderConfig& config() const override { return config_; }

  absl::StatusOr<IssuedCredential> Issue(const TaskClaims& task, const ProviderConfig&) override {
    ASSIGN_OR_RETURN(std::string url, Param(config_, "url"));
    return IssuedCredential{config_.name, "webhook", url, "", task.deadline};
  }

  absl::Status Revoke(const std::string& task_id, const std::string& reason) override {
    ASSIGN_OR_RETURN(std::string url, Param(config_, "url"));
    int64_t now = absl::ToUnixSeconds(absl::Now());
    // A Security Event Token payload (RFC 8417) carrying a CAEP session-revoked event, sent as
    // JSON.
    nlohmann::json set = {
        {"iss", config_.params.count("issuer") ? config_.params.at("issuer") : "writ"},
        {"jti", Base64UrlEncode(RandomBytes(16))},
        {"iat", now},
        {"sub_id", {{"format", "opaque"}, {"id", task_id}}},
        {"events",
         {{"https://schemas.openid.net/secevent/caep/event-type/session-revoked",
           {{"subject", {{"format", "opaque"}, {"id", task_id}}},
            {"event_timestamp", now},
            {"initiating_entity", "policy"},
            {"reason_admin", {{"en", reason}}}}}}}};
    if (config_.params.count("audience")) set["aud"] = config_.params.at("audience");
    http::ClientRequest req;
    req.method = "POST";
    req.url = url;
    if (auto it = config_.params.find("ca_file"); it != config_.params.end())
      req.ca_file = it->second;
    req.headers = {{"Content-Type", "application/json"}};
    if (config_.params.count("authorization"))
      req.headers.emplace_back("Authorization", config_.params.at("authorization"));
    req.body = set.dump();
    ASSIGN_OR_RETURN(http::ClientResponse resp, http::Fetch(req));
    if (resp.status < 200 || resp.status >= 300) {
      return absl::UnavailableError(
          absl::StrCat("provider '", config_.name, "': webhook ", url, ": HTTP ", resp.status));
    }
    return absl::OkStatus();
  }

 private:
  const ProviderConfig config_;
};

}  // namespace

std::string PostgresRoleName(const std::string& prefix, const std::string& task_id) {
  std::string clean;
  for (char c : task_id) {
    char l = absl::ascii_tolower(static_cast<unsigned char>(c));
    clean.push_back(absl::ascii_isalnum(static_cast<unsigned char>(l)) ? l : '_');
    if (clean.size() >= 40) break;
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(task_id.data()), task_id.size(), digest);
  std::string name =
      absl::StrCat(prefix.substr(0, 12), clean, "_",
                   absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), 4)));
  return name.substr(0, 63);
}

absl::Status ValidateGrant(const std::string& provider, const std::string& grant) {
  return CheckGrant(provider, grant);
}

absl::StatusOr<std::unique_ptr<CredentialProvider>> MakeProvider(const ProviderConfig& c) {
  if (c.name.empty()) return absl::InvalidArgumentError("provider: name is required");
  if (c.type == "postgres") {
    RETURN_IF_ERROR(Param(c, "conninfo").status());
    for (const auto& g : c.grants) RETURN_IF_ERROR(CheckGrant(c.name, g));
    return NewPostgresProvider(c);
  }
  if (c.type == "vault") {
    for (const char* k : {"addr", "token", "prefix"}) RETURN_IF_ERROR(Param(c, k).status());
    return std::unique_ptr<CredentialProvider>(new VaultProvider(c));
  }
  if (c.type == "webhook") {
    RETURN_IF_ERROR(Param(c, "url").status());
    return std::unique_ptr<CredentialProvider>(new WebhookProvider(c));
  }
  return absl::InvalidArgumentError(absl::StrCat("provider '", c.name, "': type '", c.type,
                                                 "' is not one of postgres, vault, webhook"));
}

}  // namespace writ::creds
