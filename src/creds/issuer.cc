#include "creds/issuer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "creds/log.h"
#include "util/status_macros.h"

namespace writ::creds {

absl::Status ValidateAudience(const std::vector<std::string>& audience) {
  if (audience.empty())
    return absl::InvalidArgumentError("audience: at least one audience is required");
  if (audience.size() > kMaxAudiences) {
    return absl::InvalidArgumentError(absl::StrCat(
        "audience: ", audience.size(), " entries, at most ", kMaxAudiences, " allowed"));
  }
  for (size_t i = 0; i < audience.size(); ++i) {
    const std::string& a = audience[i];
    if (a.empty()) return absl::InvalidArgumentError(absl::StrCat("audience[", i, "]: empty"));
    if (a.size() > kMaxAudienceBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "audience[", i, "]: ", a.size(), " bytes, at most ", kMaxAudienceBytes, " allowed"));
    }
    for (unsigned char c : a) {
      if (c < 0x21 || c > 0x7e) {
        return absl::InvalidArgumentError(
            absl::StrCat("audience[", i, "]: byte 0x", absl::Hex(c), " is not printable ASCII"));
      }
    }
  }
  return absl::OkStatus();
}

nlohmann::json ActClaim(const std::vector<std::string>& chain) {
  nlohmann::json act;            // null when the chain is empty
  for (const auto& p : chain) {  // oldest first; each newer delegate wraps the previous ones
    nlohmann::json outer = {{"sub", p}};
    if (!act.is_null()) outer["act"] = std::move(act);
    act = std::move(outer);
  }
  return act;
}

Issuer::Issuer(IssuerOptions options, KeyStore* keys, RevocationStore* revocations)
    : options_(std::move(options)), keys_(keys), revocations_(revocations) {}

absl::StatusOr<Svid> Issuer::Mint(const TaskClaims& task, std::vector<std::string> audience) {
  RETURN_IF_ERROR(ValidateAudience(audience));
  if (task.task_id.empty()) return absl::InvalidArgumentError("task: task_id is empty");
  if (task.spiffe_id.rfind("spiffe://", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task ", task.task_id, ": spiffe_id '", task.spiffe_id, "' does not start with spiffe://"));
  }
  if (revocations_->IsTaskRevoked(task.task_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task.task_id, " is revoked or ended"));
  }
  absl::Time now = Now();
  absl::Time exp = std::min(now + options_.default_ttl, task.deadline);
  // Whole seconds on the wire: truncate exp down so the token never outlives the deadline by
  // rounding.
  int64_t iat_s = absl::ToUnixSeconds(now);
  int64_t exp_s = absl::ToUnixSeconds(exp);
  if (exp_s <= iat_s) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task.task_id, " is past its deadline"));
  }
  ASSIGN_OR_RETURN(SigningKey key, keys_->Current());
  Svid svid;
  svid.jti = Base64UrlEncode(RandomBytes(16));
  svid.spiffe_id = task.spiffe_id;
  svid.kid = key.kid;
  svid.audience = std::move(audience);
  svid.issued_at = absl::FromUnixSeconds(iat_s);
  svid.expires_at = absl::FromUnixSeconds(exp_s);
  nlohmann::json claims = {{"iss", options_.issuer},
                           {"sub", task.spiffe_id},
                           {"aud", svid.audience},
                           {"exp", exp_s},
                           {"iat", iat_s},
                           {"jti", svid.jti},
                           {"writ_task", task.task_id},
                           {"scope", task.intent}};
  nlohmann::json act = ActClaim(task.principal_chain);
  if (!act.is_null()) claims["act"] = std::move(act);
  // Record before handing out: a token revocation must be able to find every token of the task.
  RETURN_IF_ERROR(revocations_->RecordIssued(svid.jti, task.task_id, svid.expires_at));
  ASSIGN_OR_RETURN(svid.token, SignJwt(claims, *key.key, key.kid, "JWT"));
  return svid;
}

absl::StatusOr<nlohmann::json> Issuer::VerifySignature(std::string_view token) const {
  auto decoded = DecodeJwt(token);
  if (!decoded.ok()) return absl::UnauthenticatedError(decoded.status().message());
  if (!decoded->header.contains("kid") || !decoded->header["kid"].is_string()) {
    return absl::UnauthenticatedError("jwt: header has no kid");
  }
  auto key = keys_->Find(decoded->header["kid"].get<std::string>());
  if (key == nullptr) return absl::UnauthenticatedError("jwt: unknown or retired kid");
  RETURN_IF_ERROR(VerifyEs256(*decoded, *key));
  return std::move(decoded->payload);
}

absl::StatusOr<nlohmann::json> Issuer::Verify(std::string_view token) const {
  ASSIGN_OR_RETURN(nlohmann::json c, VerifySignature(token));
  auto str = [&](const char* k) {
    return c.contains(k) && c[k].is_string() ? c[k].get<std::string>() : "";
  };
  if (str("iss") != options_.issuer) return absl::UnauthenticatedError("jwt: wrong issuer");
  if (!c.contains("exp") || !c["exp"].is_number_integer())
    return absl::UnauthenticatedError("jwt: no exp");
  if (c["exp"].get<int64_t>() <= absl::ToUnixSeconds(Now()))
    return absl::UnauthenticatedError("jwt: expired");
  if (revocations_->IsJtiRevoked(str("jti"))) return absl::UnauthenticatedError("jwt: revoked");
  if (revocations_->IsTaskRevoked(str("writ_task"))) {
    return absl::UnauthenticatedError("jwt: its task is revoked or ended");
  }
  return c;
}

absl::StatusOr<nlohmann::json> Issuer::Validate(std::string_view token,
                                                std::string_view audience) const {
  if (audience.empty()) return absl::InvalidArgumentError("audience is required");
  ASSIGN_OR_RETURN(nlohmann::json c, Verify(token));
  bool match = false;
  if (c.contains("aud") && c["aud"].is_array()) {
    for (const auto& a : c["aud"])
      match = match || (a.is_string() && a.get<std::string>() == audience);
  } else if (c.contains("aud") && c["aud"].is_string()) {
    match = c["aud"].get<std::string>() == audience;
  }
  if (!match)
    return absl::UnauthenticatedError(
        absl::StrCat("jwt: audience '", std::string(audience), "' not in token"));
  return c;
}

nlohmann::json Issuer::Introspect(std::string_view token) const {
  auto c = Verify(token);
  if (!c.ok()) return nlohmann::json{{"active", false}};
  nlohmann::json out = {{"active", true}, {"token_type", "Bearer"}};
  for (const char* k : {"sub", "aud", "exp", "iat", "jti", "iss", "scope", "act", "writ_task"}) {
    if (c->contains(k)) out[k] = (*c)[k];
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Issuer::Revoke(const std::string& task_id,
                                                        const std::string& reason) {
  ASSIGN_OR_RETURN(auto jtis, revocations_->RevokeTask(task_id, reason, Now()));
  Log()->info("revoked task {} ({}): {} live token(s)", task_id, reason, jtis.size());
  return jtis;
}

absl::StatusOr<std::string> Issuer::RevokeToken(std::string_view token, const std::string& reason) {
  // Only tokens we signed may create rows: otherwise anyone could fill the store with garbage jtis.
  auto c = VerifySignature(token);
  if (!c.ok()) return std::string();
  auto str = [&](const char* k) {
    return c->contains(k) && (*c)[k].is_string() ? (*c)[k].get<std::string>() : "";
  };
  int64_t exp =
      c->contains("exp") && (*c)["exp"].is_number_integer() ? (*c)["exp"].get<int64_t>() : 0;
  std::string jti = str("jti");
  if (jti.empty()) return std::string();
  RETURN_IF_ERROR(
      revocations_->RevokeJti(jti, str("writ_task"), absl::FromUnixSeconds(exp), reason));
  return jti;
}

}  // namespace writ::creds
