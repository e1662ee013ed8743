#include "http/server_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"

namespace writ::http {
namespace {

namespace ssl = boost::asio::ssl;

// OpenSSL's reason for the last failure (its queue is cleared), or `fallback`.
std::string OpenSslError(const char* fallback) {
  unsigned long e = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  std::string out = fallback;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out = buf;
  }
  ERR_clear_error();
  return out;
}

absl::Status FileError(const char* field, const std::string& path, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("http: ", field, " '", path, "': ", why));
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 512)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ssl::context>> MakeServerTlsContext(const TlsOptions& o) {
  if (o.cert_file.empty() || o.key_file.empty()) {
    return absl::InvalidArgumentError(
        "http: tls needs both tls.cert and tls.key (PEM files: the certificate chain and its key)");
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // No renegotiation (a client-initiated one is a CPU lever), no compression, a fresh ECDHE key per
  // handshake.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
  // An idle keep-alive connection gives its read and write buffers (~34 KiB) back to the allocator.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(c, o.cert_file.c_str()) != 1) {
    return FileError("tls.cert", o.cert_file, OpenSslError("cannot load the certificate"));
  }
  // OpenSSL checks the key against the certificate as it loads it (X509_R_KEY_VALUES_MISMATCH).
  if (SSL_CTX_use_PrivateKey_file(c, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 &&
      ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH) {
    return FileError("tls.key", o.key_file, OpenSslError("cannot load the private key"));
  }
  if (ERR_peek_error() != 0 || SSL_CTX_check_private_key(c) != 1) {
    return FileError("tls.key", o.key_file,
                     absl::StrCat("does not match the certificate in ", o.cert_file, " (",
                                  OpenSslError("mismatch"), ")"));
  }
  if (!o.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c, o.client_ca_file.c_str(), nullptr) != 1) {
      return FileError("tls.client_ca", o.client_ca_file,
                       OpenSslError("cannot load the CA certificates"));
    }
    // The CA names the server sends in its CertificateRequest, so a client holding several
    // certificates picks one these CAs issued.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
    if (names == nullptr) {
      return FileError("tls.client_ca", o.client_ca_file, OpenSslError("holds no CA certificate"));
    }
    SSL_CTX_set_client_CA_list(c, names);
    // Asked for, verified when sent, optional: the routes that need one say so (401), the JWKS
    // and the discovery document serve anyone.
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(c, 4);
    // Sessions resumed with a client certificate need a context id (else OpenSSL refuses them).
    static const unsigned char kSessionContext[] = "writ-http";
    SSL_CTX_set_session_id_context(c, kSessionContext, sizeof(kSessionContext) - 1);
  }
  return ctx;
}

PeerCertificate VerifiedPeer(SSL* ssl) {
  PeerCertificate p;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return p;
  p.verified = true;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = n->d.uniformResourceIdentifier;
    p.identity =
        Printable(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                   static_cast<size_t>(ASN1_STRING_length(uri))));
    break;
  }
  GENERAL_NAMES_free(sans);
  if (p.identity.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert);
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) {
      unsigned char* utf8 = nullptr;
      const int len =
          ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
      if (len > 0) p.identity = Printable(std::string_view(reinterpret_cast<char*>(utf8), len));
      OPENSSL_free(utf8);
    }
  }
  return p;
}

}  // namespace writ::http
