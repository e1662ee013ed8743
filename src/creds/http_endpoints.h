// HTTP endpoints of the credential service: RFC 7662 introspection, RFC 7009 revocation, the JWKS
// and an OpenID discovery document for verifiers that only speak OIDC. Introspection and revocation
// can be reserved to clients with a verified TLS client certificate (RFC 8705 tls_client_auth).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "creds/issuer.h"
#include "creds/keystore.h"
#include "http/server.h"

namespace writ::creds {

struct EndpointOptions {
  // Where verifiers reach this server, e.g. http://127.0.0.1:8181 or the https issuer (used for
  // jwks_uri and endpoint URLs).
  std::string base_url;
  // Paths ("/introspect", "/revoke") that need a client certificate the server verified: 401
  // without one; 403 if `client_ids` is not empty and the certificate's identity (http::Request::
  // client_identity) is not in it.
  std::vector<std::string> client_auth;
  std::vector<std::string> client_ids;
  // Called with the jti after POST /revoke revoked one of our tokens.
  std::function<void(const std::string& jti)> on_token_revoked;
};

// An issuer relying parties discover: https://HOST[:PORT], nothing after it (the discovery
// document is at <issuer>/.well-known/openid-configuration and must name the same string). Returns
// HOST (an IPv6 literal keeps its brackets); the error says what is wrong.
absl::StatusOr<std::string> HttpsIssuerHost(std::string_view issuer);

// `issuer` and `keys` must outlive `server`'s use of the routes.
void RegisterEndpoints(http::Server* server, Issuer* issuer, KeyStore* keys,
                       EndpointOptions options);

}  // namespace writ::creds
