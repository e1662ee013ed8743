// Ed25519 (and, for the refusals, P-256) key pairs as PEM text for the policy-bundle tests.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

namespace writ::test_keys {

struct PemPair {
  std::string private_pem, public_pem;
};

// type: "ED25519" or "EC" (P-256).
inline PemPair NewKeyPair(const char* type = "ED25519") {
  EVP_PKEY* k = std::string(type) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                          : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  PemPair out;
  if (k == nullptr) return out;
  auto pem = [](auto write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<size_t>(n));
    BIO_free(b);
    return s;
  };
  out.private_pem =
      pem([k](BIO* b) { PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr); });
  out.public_pem = pem([k](BIO* b) { PEM_write_bio_PUBKEY(b, k); });
  EVP_PKEY_free(k);
  return out;
}

}  // namespace writ::test_keys
