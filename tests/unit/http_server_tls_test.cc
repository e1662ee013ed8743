// http::Server over TLS (issue 19: relying parties on other hosts): the handshake with and without
// a client certificate, the verified identity handed to handlers (URI SAN, else CN), a certificate
// from another CA and a plain-HTTP client refused at the handshake and counted, a silent or
// trickled handshake cut off by the request deadline, limits and keep-alive over TLS, the options
// Create refuses (a non-loopback address without TLS, unreadable or mismatched PEM files). Then the
// credential endpoints behind client_auth (401, 403, 200), the https issuer check, and a
// CredentialService whose https issuer is its tokens' `iss` and the base of its discovery document.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "creds/creds.h"
#include "creds/http_endpoints.h"
#include "gtest/gtest.h"
#include "http/client.h"
#include "http/server.h"
#include "loopback_connect.h"
#include "nlohmann/json.hpp"
#include "tls_test_server.h"

namespace writ {
namespace {

using testing::TestPki;

// Certificates for one test: a server CA and the server's certificate for 127.0.0.1, a client CA
// with a SPIFFE client and a CN-only client, and a foreign CA's client claiming the same SPIFFE ID.
class TlsPki {
 public:
  TlsPki() {
    char tmpl[] = "/tmp/writ-https-XXXXXX";
    dir = mkdtemp(tmpl);
    server_ca = std::make_unique<TestPki>(dir, "server");
    client_ca = std::make_unique<TestPki>(dir, "clients");
    foreign_ca = std::make_unique<TestPki>(dir, "foreign");
    server = server_ca->Issue("server", "writ-a", {"IP:127.0.0.1", "DNS:localhost"});
    spiffe_client = client_ca->Issue("rp", "rp-db", {"URI:spiffe://example.org/rp/db"});
    cn_client = client_ca->Issue("cn", "relying-party-7", {});
    foreign_client = foreign_ca->Issue("foreign", "rp-db", {"URI:spiffe://example.org/rp/db"});
  }
  ~TlsPki() { std::filesystem::remove_all(dir); }

  http::TlsOptions Options(bool with_client_ca = true) const {
    return {server.cert, server.key, with_client_ca ? client_ca->ca().cert : ""};
  }

  std::string dir;
  std::unique_ptr<TestPki> server_ca, client_ca, foreign_ca;
  TestPki::Files server, spiffe_client, cn_client, foreign_client;
};

int Connect(int port) { return testing::ConnectLoopback(port); }

// Sends `bytes` one every `gap` until the server closes the connection or `limit` passes; returns
// how long the server took to close it (limit if it did not).
absl::Duration TrickleUntilClosed(int fd, std::string_view bytes, absl::Duration gap,
                                  absl::Duration limit) {
  const absl::Time start = absl::Now();
  size_t sent = 0;
  while (absl::Now() - start < limit) {
    if (sent < bytes.size() && ::send(fd, bytes.data() + sent, 1, MSG_NOSIGNAL) == 1) sent++;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(gap))) > 0) {
      char tmp[256];
      if (::recv(fd, tmp, sizeof(tmp), 0) <= 0) return absl::Now() - start;
    }
  }
  return limit;
}

class TlsServerTest : public ::testing::Test {
 protected:
  void StartServer(http::ServerOptions o) {
    auto s = http::Server::Create(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    server_->AddRoute("GET", "/whoami", [this](const http::Request& r) {
      handled_++;
      http::Response resp;
      resp.body = absl::StrCat(r.client_verified ? "verified " : "anonymous ", r.client_identity);
      return resp;
    });
    ASSERT_TRUE(server_->Start().ok());
  }
  http::ServerOptions Options(bool with_client_ca = true) {
    http::ServerOptions o;
    o.tls = pki_.Options(with_client_ca);
    o.workers = 1;
    return o;
  }
  http::ClientRequest Get(const std::string& path, const TestPki::Files* client = nullptr) {
    http::ClientRequest req;
    req.url = absl::StrCat("https://127.0.0.1:", server_->port(), path);
    req.ca_file = pki_.server_ca->ca().cert;
    if (client != nullptr) {
      req.cert = client->cert;
      req.key = client->key;
    }
    return req;
  }

  TlsPki pki_;
  std::unique_ptr<http::Server> server_;
  std::atomic<int> handled_{0};
};

TEST_F(TlsServerTest, HandlersSeeTheVerifiedClientIdentityOrNone) {
  StartServer(Options());
  EXPECT_TRUE(server_->tls());
  EXPECT_EQ(server_->scheme(), "https");
  auto r = http::Fetch(Get("/whoami", &pki_.spiffe_client));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "verified spiffe://example.org/rp/db");
  r = http::Fetch(Get("/whoami", &pki_.cn_client));  // no URI SAN: the subject CN
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "verified relying-party-7");
  r = http::Fetch(Get("/whoami"));  // the certificate is optional at the handshake
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "anonymous ");
  EXPECT_EQ(server_->stats().tls_failures, 0u);
}

TEST_F(TlsServerTest, WithoutAClientCaNoCertificateIsAskedForOrTrusted) {
  StartServer(Options(/*with_client_ca=*/false));
  auto r = http::Fetch(Get("/whoami", &pki_.spiffe_client));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "anonymous ");
}

TEST_F(TlsServerTest, AForeignClientCertificateFailsTheHandshake) {
  StartServer(Options());
  // Same SPIFFE ID, another CA: refused before any request is read (with TLS 1.3 the client learns
  // it from the server's alert, at its first read).
  auto r = http::Fetch(Get("/whoami", &pki_.foreign_client));
  EXPECT_FALSE(r.ok()) << r->status << " " << r->body;
  EXPECT_EQ(handled_.load(), 0);
  const absl::Time until = absl::Now() + absl::Seconds(2);
  while (server_->stats().tls_failures == 0 && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(server_->stats().tls_failures, 1u);
  EXPECT_NE(server_->MetricsText().find("writ_http_tls_handshake_failures_total 1"),
            std::string::npos);
}

TEST_F(TlsServerTest, PlainHttpToATlsPortIsRefusedAndCounted) {
  StartServer(Options());
  http::ClientRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", server_->port(), "/whoami");
  auto r = http::Fetch(req);
  EXPECT_FALSE(r.ok() && r->status == 200);
  EXPECT_EQ(handled_.load(), 0);
  const absl::Time until = absl::Now() + absl::Seconds(2);
  while (server_->stats().tls_failures == 0 && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(server_->stats().tls_failures, 1u);
}

TEST_F(TlsServerTest, SilentAndTrickledHandshakesAreCutOffAtTheRequestDeadline) {
  http::ServerOptions o = Options();
  o.io_timeout = absl::Milliseconds(600);
  StartServer(o);
  // Nothing at all after connecting.
  int silent = Connect(server_->port());
  ASSERT_GE(silent, 0);
  // A ClientHello record header announcing 512 bytes, then one byte every 50 ms: never complete.
  int slow = Connect(server_->port());
  ASSERT_GE(slow, 0);
  std::string hello = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  hello.append(200, 'x');
  const absl::Duration slow_took =
      TrickleUntilClosed(slow, hello, absl::Milliseconds(50), absl::Seconds(5));
  const absl::Duration silent_took =
      TrickleUntilClosed(silent, "", absl::Milliseconds(50), absl::Seconds(5));
  EXPECT_GE(slow_took, absl::Milliseconds(500));
  EXPECT_LT(slow_took, absl::Seconds(2)) << "the trickled handshake was not cut off";
  EXPECT_LT(silent_took, absl::Seconds(2)) << "the silent connection was not cut off";
  ::close(silent);
  ::close(slow);
  EXPECT_EQ(server_->stats().timeouts, 2u);
  EXPECT_EQ(server_->stats().tls_failures, 0u);
  // Still serving.
  auto r = http::Fetch(Get("/whoami"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST_F(TlsServerTest, LimitsHostCheckAndKeepAliveHoldOverTls) {
  StartServer(Options());
  server_->AddRoute("POST", "/x", [](const http::Request&) { return http::Response{}; });
  http::Client client;  // one connection for all of these
  for (int i = 0; i < 3; ++i) {
    auto r = client.Fetch(Get("/whoami", &pki_.spiffe_client));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  http::ClientRequest req = Get("/x");
  req.method = "POST";
  req.body = std::string(64 * 1024, 'a');
  auto r = http::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 413);
  req = Get("/whoami");
  req.headers = {{"X-Big", std::string(20 * 1024, 'h')}};
  r = http::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 431);
  req = Get("/whoami");
  req.headers = {{"Host", "attacker.example"}};
  r = http::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 421);
}

TEST(TlsServerCreate, RefusesNonLoopbackWithoutTlsAndBadPemFiles) {
  TlsPki pki;
  http::ServerOptions o;
  o.address = "0.0.0.0:0";
  auto s = http::Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("needs TLS (tls.cert and tls.key)"), std::string::npos)
      << s.status();
  o.tls = pki.Options();
  s = http::Server::Create(o);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Start().ok());
  EXPECT_GT((*s)->port(), 0);
  (*s)->Stop();

  o.tls.key_file.clear();
  s = http::Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("tls.key"), std::string::npos) << s.status();
  o.tls = pki.Options();
  o.tls.cert_file = pki.dir + "/missing.crt";
  s = http::Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("tls.cert '" + pki.dir + "/missing.crt'"), std::string::npos)
      << s.status();
  o.tls = pki.Options();
  o.tls.key_file = pki.spiffe_client.key;  // another certificate's key
  s = http::Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("does not match the certificate"), std::string::npos)
      << s.status();
  o.tls = pki.Options();
  o.tls.client_ca_file = pki.server.key;  // not a certificate
  s = http::Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("tls.client_ca"), std::string::npos) << s.status();
}

// A process writd execs after the server started (the guardian, which outlives a writd that dies)
// must not keep its port: the next writd binds it again.
TEST(ServerSockets, AnExecedChildDoesNotKeepThePort) {
  auto s = http::Server::Create({});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Start().ok());
  const int port = (*s)->port();
  const int conn = Connect(port);  // an accepted connection is open too
  ASSERT_GE(conn, 0);
  absl::SleepFor(absl::Milliseconds(50));
  // Until it execs, a forked child holds every descriptor, close-on-exec or not: wait for the exec
  // (the pipe's write end closes then).
  int exec_pipe[2];
  ASSERT_EQ(pipe2(exec_pipe, O_CLOEXEC), 0);
  const pid_t child = fork();
  if (child == 0) {
    execl("/bin/sleep", "sleep", "3", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(child, 0);
  ::close(exec_pipe[1]);
  char byte;
  EXPECT_EQ(::read(exec_pipe[0], &byte, 1), 0);
  ::close(exec_pipe[0]);
  (*s)->Stop();
  ::close(conn);
  http::ServerOptions o;
  o.address = absl::StrCat("127.0.0.1:", port);
  auto again = http::Server::Create(o);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::Status st = (*again)->Start();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(st.ok()) << st;
}

// ---- the credential endpoints behind client certificates

class TlsEndpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    creds::KeyStoreOptions ko;
    ko.state_dir = pki_.dir + "/state";
    keys_ = std::move(*creds::KeyStore::Open(ko));
    revs_ = std::move(*creds::RevocationStore::Open(pki_.dir + "/revoked.db"));
    issuer_ = std::make_unique<creds::Issuer>(creds::IssuerOptions{"https://writ-a.example"},
                                              keys_.get(), revs_.get());
    http::ServerOptions o;
    o.tls = pki_.Options();
    server_ = std::move(*http::Server::Create(o));
    ASSERT_TRUE(server_->Start().ok());
    creds::EndpointOptions eo;
    eo.base_url = "https://writ-a.example";
    eo.client_auth = {"/introspect", "/revoke"};
    eo.client_ids = {"spiffe://example.org/rp/db"};
    creds::RegisterEndpoints(server_.get(), issuer_.get(), keys_.get(), eo);
  }
  http::ClientResponse Call(const std::string& method, const std::string& path,
                            const std::string& body, const TestPki::Files* client) {
    http::ClientRequest req;
    req.method = method;
    req.url = absl::StrCat("https://127.0.0.1:", server_->port(), path);
    req.ca_file = pki_.server_ca->ca().cert;
    if (client != nullptr) {
      req.cert = client->cert;
      req.key = client->key;
    }
    if (method == "POST") req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = body;
    auto r = http::Fetch(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : http::ClientResponse{};
  }

  TlsPki pki_;
  std::unique_ptr<creds::KeyStore> keys_;
  std::unique_ptr<creds::RevocationStore> revs_;
  std::unique_ptr<creds::Issuer> issuer_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(TlsEndpointsTest, IntrospectAndRevokeNeedAnAllowedClientCertificate) {
  auto svid = issuer_->Mint(
      {"task-1", "spiffe://example.org/agent/x", {}, "review", absl::Now() + absl::Hours(1)},
      {"db"});
  ASSERT_TRUE(svid.ok());
  const std::string form = "token=" + svid->token;
  for (const char* path : {"/introspect", "/revoke"}) {
    SCOPED_TRACE(path);
    auto r = Call("POST", path, form, nullptr);
    EXPECT_EQ(r.status, 401);
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["error"], "invalid_client");
    EXPECT_NE(j["error_description"].get<std::string>().find("client certificate"),
              std::string::npos);
    r = Call("POST", path, form, &pki_.cn_client);  // verified, but not an allowed identity
    EXPECT_EQ(r.status, 403);
    j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["error"], "unauthorized_client");
    EXPECT_NE(j["error_description"].get<std::string>().find("relying-party-7"), std::string::npos);
  }
  // The refused revocations revoked nothing.
  auto r = Call("POST", "/introspect", form, &pki_.spiffe_client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(nlohmann::json::parse(r.body)["active"], true);
  EXPECT_EQ(Call("POST", "/revoke", form, &pki_.spiffe_client).status, 200);
  r = Call("POST", "/introspect", form, &pki_.spiffe_client);
  EXPECT_EQ(nlohmann::json::parse(r.body)["active"], false);
  // Keys and discovery serve anyone; the discovery says how the endpoints authenticate.
  EXPECT_EQ(Call("GET", "/jwks.json", "", nullptr).status, 200);
  r = Call("GET", "/.well-known/openid-configuration", "", nullptr);
  ASSERT_EQ(r.status, 200);
  auto d = nlohmann::json::parse(r.body);
  EXPECT_EQ(d["issuer"], "https://writ-a.example");
  EXPECT_EQ(d["jwks_uri"], "https://writ-a.example/jwks.json");
  EXPECT_EQ(d["introspection_endpoint"], "https://writ-a.example/introspect");
  EXPECT_EQ(d["introspection_endpoint_auth_methods_supported"],
            nlohmann::json::array({"tls_client_auth"}));
  EXPECT_EQ(d["revocation_endpoint_auth_methods_supported"],
            nlohmann::json::array({"tls_client_auth"}));
}

TEST(HttpsIssuerHost, AcceptsOnlyABareHttpsOrigin) {
  EXPECT_EQ(*creds::HttpsIssuerHost("https://writ-a.example"), "writ-a.example");
  EXPECT_EQ(*creds::HttpsIssuerHost("https://Writ-A.example:8443"), "writ-a.example");
  EXPECT_EQ(*creds::HttpsIssuerHost("https://10.0.0.5:8443"), "10.0.0.5");
  EXPECT_EQ(*creds::HttpsIssuerHost("https://[fd00::5]:8443"), "[fd00::5]");
  for (const char* bad :
       {"http://writ-a.example", "https://", "https://writ-a.example/", "https://writ-a.example/x",
        "https://writ-a.example:", "https://writ-a.example:0", "https://writ-a.example:99999",
        "https://writ-a.example:84a3", "https://u@writ-a.example", "https://writ-a.example?x",
        "https://writ a.example", "spiffe://example.org", "https://[fd00::5", "https://[]:1"}) {
    EXPECT_FALSE(creds::HttpsIssuerHost(bad).ok()) << bad;
  }
  EXPECT_NE(creds::HttpsIssuerHost("https://writ-a.example/").status().message().find("no path"),
            std::string::npos);
}

// The service wires it together: the https issuer is the tokens' `iss`, the base of the discovery
// document, and a Host the server answers to.
TEST(CredentialServiceTls, HttpsIssuerIsTheIssAndTheDiscoveryBase) {
  TlsPki pki;
  creds::CredentialConfig c;
  c.state_dir = pki.dir + "/svc";
  c.trust_domain = "example.org";
  c.issuer = "https://writ-a.example";
  c.http_addr = "127.0.0.1:0";
  c.http_tls = pki.Options();
  c.http_client_auth = {"/introspect"};
  auto svc = creds::CredentialService::Start(c);
  ASSERT_TRUE(svc.ok()) << svc.status();
  EXPECT_EQ((*svc)->http_base_url(), "https://writ-a.example");
  auto svid = (*svc)->Mint(
      {"task-1", "spiffe://example.org/agent/x", {}, "review", absl::Now() + absl::Hours(1)},
      {"db"});
  ASSERT_TRUE(svid.ok()) << svid.status();
  auto jwt = creds::DecodeJwt(svid->token);
  ASSERT_TRUE(jwt.ok());
  EXPECT_EQ(jwt->payload["iss"], "https://writ-a.example");
  http::ClientRequest req;
  req.url = absl::StrCat("https://127.0.0.1:", (*svc)->http_server()->port(),
                         "/.well-known/openid-configuration");
  req.ca_file = pki.server_ca->ca().cert;
  req.headers = {{"Host", "writ-a.example"}};
  auto r = http::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = nlohmann::json::parse(r->body);
  EXPECT_EQ(d["issuer"], "https://writ-a.example");
  EXPECT_EQ(d["jwks_uri"], "https://writ-a.example/jwks.json");
  EXPECT_EQ(d["revocation_endpoint_auth_methods_supported"], nlohmann::json::array({"none"}));
  (*svc)->Stop();

  c.issuer = "https://writ-a.example/oidc";
  svc = creds::CredentialService::Start(c);
  ASSERT_FALSE(svc.ok());
  EXPECT_NE(svc.status().message().find("no path"), std::string::npos) << svc.status();
  c.issuer = "https://writ-a.example";
  c.http_tls.client_ca_file.clear();
  svc = creds::CredentialService::Start(c);
  ASSERT_FALSE(svc.ok());
  EXPECT_NE(svc.status().message().find("client CA"), std::string::npos) << svc.status();
}

}  // namespace
}  // namespace writ
