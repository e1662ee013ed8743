#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "creds/jwt.h"
#include "creds/keystore.h"
#include "gtest/gtest.h"

namespace writ::creds {
namespace {

TEST(Base64Url, RoundTripsAllLengthsAndBytes) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n < 40; ++n) {
    std::string in = all.substr(n * 5 % 200, n);
    std::string enc = Base64UrlEncode(in);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos) << enc;
    auto dec = Base64UrlDecode(enc);
    ASSERT_TRUE(dec.ok()) << dec.status();
    EXPECT_EQ(*dec, in);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");  // RFC 4648 §5 alphabet
  EXPECT_FALSE(Base64UrlDecode("ab+c").ok());
  EXPECT_FALSE(Base64UrlDecode("abcde").ok());  // 1 mod 4
}

TEST(Jwt, SignVerifyRawSignatureAndTamper) {
  auto key = EcKey::Generate();
  ASSERT_TRUE(key.ok());
  nlohmann::json payload = {{"sub", "spiffe://example.org/a"}, {"n", 1}};
  auto tok = SignJwt(payload, *key, key->Thumbprint());
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto d = DecodeJwt(*tok);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->signature.size(), 64u);  // JWS r||s, not DER
  EXPECT_EQ(d->header["alg"], "ES256");
  EXPECT_EQ(d->header["kid"], key->Thumbprint());
  EXPECT_EQ(d->payload, payload);
  EXPECT_TRUE(VerifyEs256(*d, *key).ok());

  // Verification with the public JWK alone (what a relying party has).
  auto pub = EcKey::FromPublicJwk(key->PublicJwk());
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_TRUE(VerifyEs256(*d, *pub).ok());

  // Another key fails; a changed payload fails.
  auto other = EcKey::Generate();
  EXPECT_FALSE(VerifyEs256(*d, *other).ok());
  std::string forged = *tok;
  size_t dot = forged.find('.');
  forged.replace(dot + 1, forged.find('.', dot + 1) - dot - 1,
                 Base64UrlEncode(R"({"sub":"spiffe://example.org/evil","n":1})"));
  auto fd = DecodeJwt(forged);
  ASSERT_TRUE(fd.ok());
  EXPECT_FALSE(VerifyEs256(*fd, *key).ok());
}

TEST(Jwt, RejectsAlgNoneAndMalformed) {
  std::string none = Base64UrlEncode(R"({"alg":"none"})") + "." + Base64UrlEncode("{}") + ".";
  EXPECT_FALSE(DecodeJwt(none).ok());
  EXPECT_FALSE(DecodeJwt("a.b").ok());
  EXPECT_FALSE(DecodeJwt("!!.??.**").ok());
  std::string hs = Base64UrlEncode(R"({"alg":"HS256"})") + "." + Base64UrlEncode("{}") + "." +
                   Base64UrlEncode(std::string(64, 'x'));
  EXPECT_FALSE(DecodeJwt(hs).ok());
}

TEST(Jwt, ThumbprintMatchesRfc7638Example) {
  // RFC 7638 §3.1 uses RSA; for EC we check the canonical form directly: members crv,kty,x,y in
  // order.
  auto key = EcKey::Generate();
  std::string canon = key->PublicJwk().dump();
  EXPECT_EQ(canon.rfind(R"({"crv":"P-256","kty":"EC","x":")", 0), 0u) << canon;
  EXPECT_EQ(key->Thumbprint().size(), 43u);  // 32 bytes base64url
}

TEST(Jwt, PemRoundTripKeepsKey) {
  auto key = EcKey::Generate();
  auto pem = key->PrivatePem();
  ASSERT_TRUE(pem.ok());
  auto back = EcKey::FromPrivatePem(*pem);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->Thumbprint(), key->Thumbprint());
  EXPECT_FALSE(
      EcKey::FromPrivatePem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/writ-creds-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(KeyStore, CreatesPersistsRotatesAndRetires) {
  TempDir dir;
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  KeyStoreOptions o;
  o.state_dir = dir.path();
  o.rotation_period = absl::Hours(1);
  o.max_token_ttl = absl::Minutes(5);
  o.skew = absl::Minutes(1);
  o.clock = [&] { return now; };
  auto ks = KeyStore::Open(o);
  ASSERT_TRUE(ks.ok()) << ks.status();
  auto k1 = (*ks)->Current();
  ASSERT_TRUE(k1.ok());
  std::string pem_path = dir.path() + "/keys/" + k1->kid + ".pem";
  struct stat st;
  ASSERT_EQ(stat(pem_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Same key after reopening (restart).
  ks = KeyStore::Open(o);
  ASSERT_TRUE(ks.ok()) << ks.status();
  EXPECT_EQ((*ks)->Current()->kid, k1->kid);

  // Past the rotation period: a new key signs, the old one is still published.
  now += absl::Hours(1);
  auto k2 = (*ks)->Current();
  ASSERT_TRUE(k2.ok());
  EXPECT_NE(k2->kid, k1->kid);
  auto jwks = nlohmann::json::parse((*ks)->JwksJson());
  ASSERT_EQ(jwks["keys"].size(), 2u);
  EXPECT_EQ(jwks["keys"][0]["kid"], k2->kid);  // newest first
  for (const auto& k : jwks["keys"]) {
    EXPECT_EQ(k["kty"], "EC");
    EXPECT_EQ(k["crv"], "P-256");
    EXPECT_EQ(k["use"], "sig");
    EXPECT_EQ(k["alg"], "ES256");
    EXPECT_TRUE(k.contains("x") && k.contains("y"));
  }
  EXPECT_NE((*ks)->Find(k1->kid), nullptr);
  auto on_disk = ReadFile(dir.path() + "/jwks.json");
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(nlohmann::json::parse(*on_disk), jwks);

  // Just before ttl + skew the old key must remain; after it is gone from memory, disk and the
  // JWKS.
  now += absl::Minutes(6) - absl::Seconds(1);
  (void)(*ks)->Current();
  EXPECT_NE((*ks)->Find(k1->kid), nullptr);
  now += absl::Seconds(2);
  (void)(*ks)->Current();
  EXPECT_EQ((*ks)->Find(k1->kid), nullptr);
  EXPECT_EQ(nlohmann::json::parse((*ks)->JwksJson())["keys"].size(), 1u);
  EXPECT_NE(stat(pem_path.c_str(), &st), 0);
}

TEST(KeyStore, RefusesWorldReadableKeyAndMisnamedKey) {
  TempDir dir;
  KeyStoreOptions o;
  o.state_dir = dir.path();
  auto ks = KeyStore::Open(o);
  ASSERT_TRUE(ks.ok());
  std::string kid = (*ks)->Current()->kid;
  std::string pem = dir.path() + "/keys/" + kid + ".pem";
  chmod(pem.c_str(), 0644);
  auto bad = KeyStore::Open(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(pem), std::string::npos) << bad.status();
  chmod(pem.c_str(), 0600);
  std::string renamed = dir.path() + "/keys/notathumbprint.pem";
  rename(pem.c_str(), renamed.c_str());
  bad = KeyStore::Open(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("thumbprint"), std::string::npos) << bad.status();
}

}  // namespace
}  // namespace writ::creds
