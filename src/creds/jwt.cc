#include "creds/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace writ::creds {
namespace {

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kCoordBytes = 32;  // P-256 field size

absl::Status OpenSslError(std::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = {0};
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(
      absl::StrCat(std::string(what), ": ", e ? buf : "unknown OpenSSL error"));
}

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
struct SigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::string BnToFixed(const BIGNUM* bn) {
  std::string out(kCoordBytes, '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), kCoordBytes);
  return out;
}

}  // namespace

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
    out.push_back(kB64Url[(v >> 6) & 63]);
    out.push_back(kB64Url[v & 63]);
  }
  if (in.size() - i == 1) {
    uint32_t v = p[i] << 16;
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
  } else if (in.size() - i == 2) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8);
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
    out.push_back(kB64Url[(v >> 6) & 63]);
  }
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(std::string_view in) {
  // JWS forbids padding; tolerate none. A length of 1 mod 4 cannot be produced by any input.
  if (in.size() % 4 == 1) return absl::InvalidArgumentError("base64url: impossible length");
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    else
      return absl::InvalidArgumentError("base64url: invalid character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  // RAND_bytes only fails if the DRBG cannot be seeded: nothing sane can continue without
  // randomness.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) abort();
  return out;
}

absl::StatusOr<EcKey> EcKey::Generate() {
  EVP_PKEY* p = EVP_EC_gen("P-256");
  if (p == nullptr) return OpenSslError("EVP_EC_gen(P-256)");
  return EcKey(p);
}

absl::StatusOr<EcKey> EcKey::FromPrivatePem(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpenSslError("BIO_new_mem_buf");
  EVP_PKEY* p = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (p == nullptr) return OpenSslError("PEM_read_bio_PrivateKey");
  EcKey key(p);
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(p, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
          1 ||
      std::string_view(group) != "prime256v1") {
    return absl::InvalidArgumentError("private key is not an EC P-256 key");
  }
  return key;
}

absl::StatusOr<EcKey> EcKey::FromPublicJwk(const nlohmann::json& jwk) {
  if (!jwk.is_object() || jwk.value("kty", "") != "EC" || jwk.value("crv", "") != "P-256") {
    return absl::InvalidArgumentError("jwk: want kty EC, crv P-256");
  }
  if (!jwk.contains("x") || !jwk["x"].is_string() || !jwk.contains("y") || !jwk["y"].is_string()) {
    return absl::InvalidArgumentError("jwk: missing x or y");
  }
  auto x = Base64UrlDecode(jwk["x"].get<std::string>());
  auto y = Base64UrlDecode(jwk["y"].get<std::string>());
  if (!x.ok() || !y.ok() || x->size() != kCoordBytes || y->size() != kCoordBytes) {
    return absl::InvalidArgumentError("jwk: x and y must be 32-byte base64url");
  }
  std::string point = absl::StrCat("\x04", *x, *y);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("prime256v1"),
                                       0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* p = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &p, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OpenSslError("jwk: point is not on P-256");
  }
  return EcKey(p);
}

absl::StatusOr<std::string> EcKey::PrivatePem() const {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    return OpenSslError("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

nlohmann::json EcKey::PublicJwk() const {
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
  EVP_PKEY_get_bn_param(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
  BnPtr xp(x), yp(y);
  nlohmann::json j;
  j["crv"] = "P-256";
  j["kty"] = "EC";
  j["x"] = x ? Base64UrlEncode(BnToFixed(x)) : "";
  j["y"] = y ? Base64UrlEncode(BnToFixed(y)) : "";
  return j;
}

std::string EcKey::Thumbprint() const {
  nlohmann::json j = PublicJwk();
  // RFC 7638: required members only, lexicographic order, no whitespace. nlohmann's object is a
  // sorted std::map, so dump() already gives crv, kty, x, y in that order.
  std::string canonical = j.dump();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest);
  return Base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
}

absl::StatusOr<std::string> SignJwt(const nlohmann::json& payload, const EcKey& key,
                                    std::string_view kid, std::string_view typ) {
  nlohmann::json header = {{"alg", "ES256"}, {"typ", std::string(typ)}, {"kid", std::string(kid)}};
  std::string input =
      absl::StrCat(Base64UrlEncode(header.dump()), ".", Base64UrlEncode(payload.dump()));
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t der_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return OpenSslError("EVP_DigestSign init");
  }
  std::string der(der_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  const unsigned char* dp = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(
      d2i_ECDSA_SIG(nullptr, &dp, static_cast<long>(der_len)));
  if (!sig) return OpenSslError("d2i_ECDSA_SIG");
  std::string raw = BnToFixed(ECDSA_SIG_get0_r(sig.get())) + BnToFixed(ECDSA_SIG_get0_s(sig.get()));
  return absl::StrCat(input, ".", Base64UrlEncode(raw));
}

absl::StatusOr<DecodedJwt> DecodeJwt(std::string_view token) {
  std::vector<std::string> parts =
      absl::StrSplit(absl::string_view(token.data(), token.size()), '.');
  if (parts.size() != 3) return absl::InvalidArgumentError("jwt: want 3 dot-separated segments");
  auto h = Base64UrlDecode(parts[0]);
  auto p = Base64UrlDecode(parts[1]);
  auto s = Base64UrlDecode(parts[2]);
  if (!h.ok() || !p.ok() || !s.ok())
    return absl::InvalidArgumentError("jwt: segment is not base64url");
  DecodedJwt out;
  out.header = nlohmann::json::parse(*h, nullptr, /*allow_exceptions=*/false);
  out.payload = nlohmann::json::parse(*p, nullptr, /*allow_exceptions=*/false);
  if (!out.header.is_object())
    return absl::InvalidArgumentError("jwt: header is not a JSON object");
  if (!out.payload.is_object())
    return absl::InvalidArgumentError("jwt: payload is not a JSON object");
  // Never let the token choose the algorithm ("alg":"none", HS256 with the public key...).
  if (out.header.value("alg", "") != "ES256")
    return absl::InvalidArgumentError("jwt: alg must be ES256");
  if (s->size() != 2 * kCoordBytes)
    return absl::InvalidArgumentError("jwt: ES256 signature must be 64 bytes");
  out.signing_input = absl::StrCat(parts[0], ".", parts[1]);
  out.signature = std::move(*s);
  return out;
}

absl::Status VerifyEs256(const DecodedJwt& jwt, const EcKey& key) {
  if (jwt.signature.size() != 2 * kCoordBytes)
    return absl::UnauthenticatedError("jwt: bad signature size");
  const auto* raw = reinterpret_cast<const unsigned char*>(jwt.signature.data());
  std::unique_ptr<ECDSA_SIG, SigDeleter> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw, kCoordBytes, nullptr);
  BIGNUM* s = BN_bin2bn(raw + kCoordBytes, kCoordBytes, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return OpenSslError("ECDSA_SIG_set0");
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return OpenSslError("i2d_ECDSA_SIG");
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  int rc = -1;
  if (ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1) {
    rc = EVP_DigestVerify(ctx.get(), der, static_cast<size_t>(der_len),
                          reinterpret_cast<const unsigned char*>(jwt.signing_input.data()),
                          jwt.signing_input.size());
  }
  OPENSSL_free(der);
  ERR_clear_error();
  if (rc != 1) return absl::UnauthenticatedError("jwt: signature does not verify");
  return absl::OkStatus();
}

}  // namespace writ::creds
