#include "creds/http_endpoints.h"

#include "absl/strings/match.h"
#include "creds/log.h"

namespace writ::creds {
namespace {

http::Response Json(int status, const nlohmann::json& j) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = j.dump();
  return r;
}

http::Response OAuthError(int status, const char* error, const std::string& description) {
  return Json(status, {{"error", error}, {"error_description", description}});
}

bool IsForm(const http::Request& req) {
  return absl::StartsWith(req.Header("content-type"), "application/x-www-form-urlencoded");
}

}  // namespace

void RegisterEndpoints(http::Server* server, Issuer* issuer, KeyStore* keys,
                       EndpointOptions options) {
  server->AddRoute("POST", "/introspect", [issuer](const http::Request& req) {
    if (!IsForm(req))
      return OAuthError(400, "invalid_request", "want application/x-www-form-urlencoded");
    auto form = http::ParseForm(req.body);
    if (!form.ok()) return OAuthError(400, "invalid_request", std::string(form.status().message()));
    auto it = form->find("token");
    if (it == form->end())
      return OAuthError(400, "invalid_request", "form field 'token' is required");
    return Json(200, issuer->Introspect(it->second));
  });

  auto on_revoked = options.on_token_revoked;
  server->AddRoute("POST", "/revoke", [issuer, on_revoked](const http::Request& req) {
    if (!IsForm(req))
      return OAuthError(400, "invalid_request", "want application/x-www-form-urlencoded");
    auto form = http::ParseForm(req.body);
    if (!form.ok()) return OAuthError(400, "invalid_request", std::string(form.status().message()));
    auto it = form->find("token");
    if (it == form->end())
      return OAuthError(400, "invalid_request", "form field 'token' is required");
    // RFC 7009 §2.2: 200 whether or not the token was valid, so callers learn nothing about it.
    auto jti = issuer->RevokeToken(it->second, "revocation_endpoint");
    if (!jti.ok()) {
      Log()->error("revoke endpoint: {}", jti.status().ToString());
      return OAuthError(503, "temporarily_unavailable", "revocation store unavailable");
    }
    if (!jti->empty() && on_revoked) on_revoked(*jti);
    http::Response r;
    r.content_type = "application/json";
    r.body = "{}";
    return r;
  });

  server->AddRoute("GET", "/jwks.json", [keys](const http::Request&) {
    http::Response r;
    r.content_type = "application/jwk-set+json";
    r.body = keys->JwksJson();
    return r;
  });

  std::string base = options.base_url;
  server->AddRoute(
      "GET", "/.well-known/openid-configuration", [issuer, base](const http::Request&) {
        return Json(200,
                    {{"issuer", issuer->issuer()},
                     {"jwks_uri", base + "/jwks.json"},
                     {"introspection_endpoint", base + "/introspect"},
                     {"revocation_endpoint", base + "/revoke"},
                     {"id_token_signing_alg_values_supported", {"ES256"}},
                     {"response_types_supported", {"id_token"}},
                     {"subject_types_supported", {"public"}},
                     {"claims_supported",
                      {"sub", "aud", "exp", "iat", "iss", "jti", "act", "scope", "writ_task"}}});
      });
}

}  // namespace writ::creds
