// The TLS side of http::Server: the OpenSSL context built from TlsOptions (TLS 1.2+, the
// certificate and key checked against each other, an optional client CA) and the identity of the
// client certificate a handshake verified. Internal to writ_http; server.cc is its only user.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/server.h"

namespace writ::http {

// Reads the PEM files now, so a bad one is an error of Server::Create naming the field
// (tls.cert, tls.key, tls.client_ca) and the path.
absl::StatusOr<std::unique_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const TlsOptions& options);

struct PeerCertificate {
  bool verified = false;
  std::string identity;  // first URI SAN, else subject CN; printable ASCII
};

// After a successful handshake: the client's certificate if it sent one (the context's verify
// callback has already refused any the client CA does not vouch for).
PeerCertificate VerifiedPeer(SSL* ssl);

}  // namespace writ::http
