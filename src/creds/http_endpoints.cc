#include "creds/http_endpoints.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

// The `token` field of an application/x-www-form-urlencoded body (RFC 7662 and 7009 requests), or
// the 400 that says what is wrong.
absl::StatusOr<std::string> FormToken(const http::Request& req) {
  if (!absl::StartsWith(req.Header("content-type"), "application/x-www-form-urlencoded")) {
    return absl::InvalidArgumentError("want application/x-www-form-urlencoded");
  }
  auto form = http::ParseForm(req.body);
  if (!form.ok()) return form.status();
  auto it = form->find("token");
  if (it == form->end()) return absl::InvalidArgumentError("form field 'token' is required");
  return it->second;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Wraps `h` in the client certificate check when `path` is one of options.client_auth.
http::Handler ClientAuth(const EndpointOptions& options, const std::string& path, http::Handler h) {
  if (!Contains(options.client_auth, path)) return h;
  return [path, ids = options.client_ids, h = std::move(h)](const http::Request& req) {
    if (!req.client_verified) {
      return OAuthError(401, "invalid_client",
                        absl::StrCat(path,
                                     " needs a TLS client certificate issued by the configured "
                                     "client CA (http.client_auth)"));
    }
    if (!ids.empty() && !Contains(ids, req.client_identity)) {
      Log()->warn("http: {} refused to client certificate '{}' (not in http.client_ids)", path,
                  req.client_identity);
      return OAuthError(403, "unauthorized_client",
                        absl::StrCat("client '", req.client_identity, "' may not use ", path,
                                     " (not in http.client_ids)"));
    }
    return h(req);
  };
}

}  // namespace

absl::StatusOr<std::string> HttpsIssuerHost(std::string_view issuer) {
  auto bad = [issuer](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("issuer '", std::string(issuer).substr(0, 200),
                     "' must be https://HOST[:PORT]: ", std::string(why)));
  };
  constexpr std::string_view kScheme = "https://";
  if (issuer.substr(0, kScheme.size()) != kScheme) return bad("not an https URL");
  std::string_view authority = issuer.substr(kScheme.size());
  if (authority.find_first_of("/?#") != std::string_view::npos) {
    return bad("no path, query or fragment (not even a trailing /)");
  }
  for (char c : authority) {
    if (c <= 0x20 || c >= 0x7f || c == '@' || c == '%' || c == '\\') {
      return bad("HOST is a DNS name or IP address");
    }
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed [");
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("junk after ]");
      port = authority.substr(close + 2);
      if (port.empty()) return bad("empty port");
    }
  } else if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return bad("empty port");
  }
  if (host.empty() || host == "[]") return bad("no HOST");
  int p = 0;
  if (!port.empty() &&
      (port.size() > 5 || !absl::SimpleAtoi(std::string(port), &p) || p < 1 || p > 65535 ||
       port.find_first_not_of("0123456789") != std::string_view::npos)) {
    return bad("PORT is 1..65535");
  }
  return absl::AsciiStrToLower(std::string(host));
}

void RegisterEndpoints(http::Server* server, Issuer* issuer, KeyStore* keys,
                       EndpointOptions options) {
  server->AddRoute(
      "POST", "/introspect", ClientAuth(options, "/introspect", [issuer](const http::Request& req) {
        auto token = FormToken(req);
        if (!token.ok())
          return OAuthError(400, "invalid_request", std::string(token.status().message()));
        return Json(200, issuer->Introspect(*token));
      }));

  auto on_revoked = options.on_token_revoked;
  server->AddRoute(
      "POST", "/revoke",
      ClientAuth(options, "/revoke", [issuer, on_revoked](const http::Request& req) {
        auto token = FormToken(req);
        if (!token.ok())
          return OAuthError(400, "invalid_request", std::string(token.status().message()));
        // RFC 7009 §2.2: 200 whether or not the token was valid, so callers learn nothing about it.
        auto jti = issuer->RevokeToken(*token, "revocation_endpoint");
        if (!jti.ok()) {
          Log()->error("revoke endpoint: {}", jti.status().ToString());
          return OAuthError(503, "temporarily_unavailable", "revocation store unavailable");
        }
        if (!jti->empty() && on_revoked) on_revoked(*jti);
        http::Response r;
        r.content_type = "application/json";
        r.body = "{}";
        return r;
      }));

  server->AddRoute("GET", "/jwks.json", [keys](const http::Request&) {
    http::Response r;
    r.content_type = "application/jwk-set+json";
    r.body = keys->JwksJson();
    return r;
  });

  const std::string& base = options.base_url;
  // RFC 8414 / RFC 8705: how a client authenticates at each endpoint.
  auto auth = [&options](const std::string& path) {
    return nlohmann::json::array(
        {Contains(options.client_auth, path) ? "tls_client_auth" : "none"});
  };
  nlohmann::json discovery = {
      {"issuer", issuer->issuer()},
      {"jwks_uri", base + "/jwks.json"},
      {"introspection_endpoint", base + "/introspect"},
      {"introspection_endpoint_auth_methods_supported", auth("/introspect")},
      {"revocation_endpoint", base + "/revoke"},
      {"revocation_endpoint_auth_methods_supported", auth("/revoke")},
      {"id_token_signing_alg_values_supported", {"ES256"}},
      {"response_types_supported", {"id_token"}},
      {"subject_types_supported", {"public"}},
      {"claims_supported",
       {"sub", "aud", "exp", "iat", "iss", "jti", "act", "scope", "writ_task"}}};
  server->AddRoute("GET", "/.well-known/openid-configuration",
                   [body = discovery.dump()](const http::Request&) {
                     http::Response r;
                     r.content_type = "application/json";
                     r.body = body;
                     return r;
                   });
}

}  // namespace writ::creds
