// ES256 JSON Web Tokens with OpenSSL 3: P-256 key handling, base64url, JWS compact signing and
// verification. JWS carries ECDSA signatures as raw r||s (64 bytes), not the DER that OpenSSL
// produces; we convert.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace writ::creds {

std::string Base64UrlEncode(std::string_view in);
absl::StatusOr<std::string> Base64UrlDecode(std::string_view in);

// Cryptographically random bytes (RAND_bytes).
std::string RandomBytes(size_t n);

// A P-256 key (private or public-only). Move-only owner of an EVP_PKEY.
class EcKey {
 public:
  static absl::StatusOr<EcKey> Generate();
  static absl::StatusOr<EcKey> FromPrivatePem(std::string_view pem);
  // {kty:"EC", crv:"P-256", x, y} -> public key.
  static absl::StatusOr<EcKey> FromPublicJwk(const nlohmann::json& jwk);

  absl::StatusOr<std::string> PrivatePem() const;
  // {kty, crv, x, y} only: the members RFC 7638 hashes.
  nlohmann::json PublicJwk() const;
  // RFC 7638 JWK thumbprint (SHA-256, base64url).
  std::string Thumbprint() const;
  EVP_PKEY* get() const { return pkey_.get(); }

 private:
  struct Deleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  };
  explicit EcKey(EVP_PKEY* p) : pkey_(p) {}
  std::unique_ptr<EVP_PKEY, Deleter> pkey_;
};

// Signs `payload` as a compact JWS with header {alg:ES256, typ, kid}.
absl::StatusOr<std::string> SignJwt(const nlohmann::json& payload, const EcKey& key,
                                    std::string_view kid, std::string_view typ = "JWT");

struct DecodedJwt {
  nlohmann::json header;
  nlohmann::json payload;
  std::string signing_input;  // base64url(header) "." base64url(payload)
  std::string signature;      // raw r||s
};

// Splits and parses a compact JWS without verifying it. Rejects anything but alg ES256.
absl::StatusOr<DecodedJwt> DecodeJwt(std::string_view token);

// Verifies the ES256 signature of a decoded token with `key` (private or public).
absl::Status VerifyEs256(const DecodedJwt& jwt, const EcKey& key);

}  // namespace writ::creds
