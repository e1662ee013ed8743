// HTTP endpoints of the credential service on the loopback server: RFC 7662 introspection, RFC 7009
// revocation, the JWKS and an OpenID discovery document for verifiers that only speak OIDC.
#pragma once

#include <functional>
#include <string>

#include "creds/issuer.h"
#include "creds/keystore.h"
#include "http/server.h"

namespace writ::creds {

struct EndpointOptions {
  // Where verifiers reach this server, e.g. http://127.0.0.1:8181 (used for jwks_uri and endpoint
  // URLs).
  std::string base_url;
  // Called with the jti after POST /revoke revoked one of our tokens.
  std::function<void(const std::string& jti)> on_token_revoked;
};

// `issuer` and `keys` must outlive `server`'s use of the routes.
void RegisterEndpoints(http::Server* server, Issuer* issuer, KeyStore* keys,
                       EndpointOptions options);

}  // namespace writ::creds
