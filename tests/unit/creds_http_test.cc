#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "creds/http_endpoints.h"
#include "gtest/gtest.h"
#include "http/client.h"
#include "http/server.h"
#include "tls_test_server.h"

namespace writ {
namespace {

std::string Url(const http::Server& s, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(s.port()) + path;
}

http::ClientResponse Must(absl::StatusOr<http::ClientResponse> r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : http::ClientResponse{};
}

TEST(HttpServer, RoutesMethodsAndEcho) {
  auto s = http::Server::Create({});
  ASSERT_TRUE(s.ok()) << s.status();
  (*s)->AddRoute("POST", "/echo", [](const http::Request& r) {
    http::Response resp;
    resp.body =
        r.method + " " + r.path + " q=" + r.query + " x=" + r.Header("X-Thing") + " body=" + r.body;
    return resp;
  });
  ASSERT_TRUE((*s)->Start().ok());
  ASSERT_GT((*s)->port(), 0);
  http::ClientRequest req;
  req.method = "POST";
  req.url = Url(**s, "/echo?a=1");
  req.headers = {{"X-Thing", "yes"}};
  req.body = "hello";
  auto r = Must(http::Fetch(req));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /echo q=a=1 x=yes body=hello");
  req.method = "GET";
  EXPECT_EQ(Must(http::Fetch(req)).status, 405);
  req.url = Url(**s, "/nope");
  EXPECT_EQ(Must(http::Fetch(req)).status, 404);
}

TEST(HttpServer, OversizedRequestIs413) {
  auto s = http::Server::Create({});
  (*s)->AddRoute("POST", "/x", [](const http::Request&) { return http::Response{}; });
  ASSERT_TRUE((*s)->Start().ok());
  http::ClientRequest req;
  req.method = "POST";
  req.url = Url(**s, "/x");
  req.body = std::string(64 * 1024, 'a');
  EXPECT_EQ(Must(http::Fetch(req)).status, 413);
  req.body = std::string(60 * 1024, 'a');
  EXPECT_EQ(Must(http::Fetch(req)).status, 200);
  // Headers alone over their own limit (16 KiB by default): 431.
  req.body.clear();
  req.headers = {{"X-Big", std::string(20 * 1024, 'h')}};
  EXPECT_EQ(Must(http::Fetch(req)).status, 431);
}

TEST(HttpServer, SilentClientTimesOut) {
  http::ServerOptions o;
  o.io_timeout = absl::Milliseconds(300);
  o.workers = 1;
  auto s = http::Server::Create(o);
  ASSERT_TRUE((*s)->Start().ok());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons((*s)->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  absl::Time start = absl::Now();
  char buf[256] = {0};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  absl::Duration took = absl::Now() - start;
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf).rfind("HTTP/1.1 408", 0), 0u) << buf;
  EXPECT_LT(took, absl::Seconds(2));
  // The single worker is free again.
  (*s)->AddRoute("GET", "/ok", [](const http::Request&) { return http::Response{}; });
  http::ClientRequest req;
  req.url = Url(**s, "/ok");
  EXPECT_EQ(Must(http::Fetch(req)).status, 200);
}

TEST(HttpServer, RefusesNonLoopbackAndBadAddress) {
  http::ServerOptions o;
  o.address = "0.0.0.0:8080";
  auto s = http::Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("loopback"), std::string::npos);
  o.address = "127.0.0.1";
  EXPECT_FALSE(http::Server::Create(o).ok());
  o.address = "[::1]:0";
  EXPECT_TRUE(http::Server::Create(o).ok());
}

TEST(HttpForm, ParsesAndRejectsBadEscapes) {
  auto f = http::ParseForm("token=a%2Eb+c&x=&token_type_hint=access_token");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)["token"], "a.b c");
  EXPECT_EQ((*f)["x"], "");
  EXPECT_EQ((*f)["token_type_hint"], "access_token");
  EXPECT_FALSE(http::ParseForm("token=%zz").ok());
  EXPECT_FALSE(http::ParseForm("token=%4").ok());
  EXPECT_EQ(http::UrlEncode("a b/c"), "a%20b%2Fc");
}

TEST(HttpClient, RejectsOtherSchemesAndUnreachable) {
  http::ClientRequest req;
  req.url = "ftp://127.0.0.1/";
  EXPECT_EQ(http::Fetch(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.url = "http://127.0.0.1:1/";
  EXPECT_EQ(http::Fetch(req).status().code(), absl::StatusCode::kUnavailable);
  req.url = "https://127.0.0.1:1/";
  EXPECT_EQ(http::Fetch(req).status().code(), absl::StatusCode::kUnavailable);
}

// https:// against an in-process TLS server with a throwaway CA: verified against ca_file it works
// (status, headers, chunked body); a certificate from another CA, or one checked against the system
// store, is refused before any request byte is sent.
class HttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("writ-https-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    pki_ = std::make_unique<testing::TestPki>(dir_.string(), "vault");
    other_ = std::make_unique<testing::TestPki>(dir_.string(), "other");
    server_ = pki_->Issue("server", "localhost", {"IP:127.0.0.1", "DNS:localhost"});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::unique_ptr<testing::TestPki> pki_, other_;
  testing::TestPki::Files server_;
};

constexpr char kChunked[] =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Vault: yes\r\n\r\n"
    "3\r\nabc\r\n0\r\n\r\n";

TEST_F(HttpsClientTest, VerifiedRequestRoundTrip) {
  testing::TlsTestServer srv(server_, testing::TlsTestServer::Mode::kHttp, kChunked);
  ASSERT_TRUE(srv.ok());
  http::ClientRequest req;
  req.method = "PUT";
  req.url = "https://127.0.0.1:" + std::to_string(srv.port()) + "/v1/sys/leases/revoke-prefix/x";
  req.ca_file = pki_->ca().cert;
  req.headers = {{"X-Vault-Token", "s.tok"}};
  req.body = "{}";
  auto r = Must(http::Fetch(req));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "abc");
  EXPECT_EQ(r.http_version, 11);  // the receiver offers no HTTP/2 (ALPN)
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>("transfer-encoding", "chunked")));
  ASSERT_EQ(srv.requests().size(), 1u);
  const std::string got = srv.requests()[0];
  EXPECT_EQ(got.rfind("PUT /v1/sys/leases/revoke-prefix/x HTTP/1.1\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("X-Vault-Token: s.tok\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 2), "{}");
  // By name as well as by IP.
  req.url = "https://localhost:" + std::to_string(srv.port()) + "/";
  EXPECT_EQ(Must(http::Fetch(req)).status, 200);
}

TEST_F(HttpsClientTest, RefusesAnUnverifiableCertificate) {
  testing::TlsTestServer srv(server_, testing::TlsTestServer::Mode::kHttp, kChunked);
  http::ClientRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(srv.port()) + "/";
  req.ca_file = other_->ca().cert;
  auto r = http::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "TLS handshake with 127.0.0.1: certificate verify failed: unable to get local issuer "
            "certificate");
  req.ca_file = "";  // default: the system CA store, which does not know this private CA
  r = http::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("certificate verify failed"), std::string::npos)
      << r.status();
  // Right CA, wrong name.
  const auto wrong = pki_->Issue("wrong", "vault.example", {"DNS:vault.example"});
  testing::TlsTestServer srv2(wrong, testing::TlsTestServer::Mode::kHttp, kChunked);
  req.url = "https://127.0.0.1:" + std::to_string(srv2.port()) + "/";
  req.ca_file = pki_->ca().cert;
  r = http::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("IP address mismatch"), std::string::npos) << r.status();
  EXPECT_TRUE(srv.requests().empty());
  EXPECT_TRUE(srv2.requests().empty());
  EXPECT_EQ(srv.handshakes_ok() + srv2.handshakes_ok(), 0);
}

class EndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-ep-XXXXXX";
    dir_ = mkdtemp(tmpl);
    creds::KeyStoreOptions ko;
    ko.state_dir = dir_;
    keys_ = std::move(*creds::KeyStore::Open(ko));
    revs_ = std::move(*creds::RevocationStore::Open(dir_ + "/revoked.db"));
    issuer_ = std::make_unique<creds::Issuer>(creds::IssuerOptions{"https://writ.local"},
                                              keys_.get(), revs_.get());
    server_ = std::move(*http::Server::Create({}));
    ASSERT_TRUE(server_->Start().ok());
    creds::EndpointOptions eo;
    eo.base_url = "http://127.0.0.1:" + std::to_string(server_->port());
    eo.on_token_revoked = [this](const std::string& jti) { revoked_.push_back(jti); };
    creds::RegisterEndpoints(server_.get(), issuer_.get(), keys_.get(), eo);
  }
  void TearDown() override {
    server_->Stop();
    std::filesystem::remove_all(dir_);
  }
  http::ClientResponse PostForm(const std::string& path, const std::string& body) {
    http::ClientRequest req;
    req.method = "POST";
    req.url = Url(*server_, path);
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = body;
    return Must(http::Fetch(req));
  }
  creds::TaskClaims Task() {
    return {"task-1",
            "spiffe://example.org/agent/x",
            {"user:alice@x"},
            "review",
            absl::Now() + absl::Hours(1)};
  }

  std::string dir_;
  std::unique_ptr<creds::KeyStore> keys_;
  std::unique_ptr<creds::RevocationStore> revs_;
  std::unique_ptr<creds::Issuer> issuer_;
  std::unique_ptr<http::Server> server_;
  std::vector<std::string> revoked_;
};

TEST_F(EndpointsTest, IntrospectRevokeRoundTrip) {
  auto svid = issuer_->Mint(Task(), {"db"});
  ASSERT_TRUE(svid.ok());
  auto r = PostForm("/introspect", "token=" + http::UrlEncode(svid->token));
  EXPECT_EQ(r.status, 200);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["active"], true);
  EXPECT_EQ(j["sub"], "spiffe://example.org/agent/x");
  EXPECT_EQ(j["act"]["sub"], "user:alice@x");

  EXPECT_EQ(PostForm("/revoke", "token=" + svid->token).status, 200);
  EXPECT_EQ(revoked_, std::vector<std::string>{svid->jti});
  j = nlohmann::json::parse(PostForm("/introspect", "token=" + svid->token).body);
  EXPECT_EQ(j, nlohmann::json({{"active", false}}));

  // Unknown token: still 200 (RFC 7009), nothing reported.
  EXPECT_EQ(PostForm("/revoke", "token=bogus").status, 200);
  EXPECT_EQ(revoked_.size(), 1u);
  // Missing field: 400 with an OAuth error body.
  r = PostForm("/introspect", "tok=x");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "invalid_request");
}

TEST_F(EndpointsTest, JwksAndDiscovery) {
  http::ClientRequest req;
  req.url = Url(*server_, "/jwks.json");
  auto r = Must(http::Fetch(req));
  EXPECT_EQ(r.status, 200);
  auto jwks = nlohmann::json::parse(r.body);
  ASSERT_EQ(jwks["keys"].size(), 1u);
  // A relying party can verify a minted token from the published JWK alone.
  auto svid = issuer_->Mint(Task(), {"db"});
  auto pub = creds::EcKey::FromPublicJwk(jwks["keys"][0]);
  ASSERT_TRUE(pub.ok());
  EXPECT_TRUE(creds::VerifyEs256(*creds::DecodeJwt(svid->token), *pub).ok());

  req.url = Url(*server_, "/.well-known/openid-configuration");
  auto d = nlohmann::json::parse(Must(http::Fetch(req)).body);
  EXPECT_EQ(d["issuer"], "https://writ.local");
  EXPECT_EQ(d["jwks_uri"], Url(*server_, "/jwks.json"));
  EXPECT_EQ(d["id_token_signing_alg_values_supported"], nlohmann::json({"ES256"}));
}

}  // namespace
}  // namespace writ
