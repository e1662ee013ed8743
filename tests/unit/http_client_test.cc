// http::Client (libcurl) against in-process servers: connection reuse, proxies from the environment
// (and never for loopback), mutual TLS, HTTP/2 offered by ALPN, the response size limit, a receiver
// that never answers, header injection refused.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "http/client.h"
#include "http/server.h"
#include "net/tls_conn.h"
#include "sinks_test_receiver.h"
#include "tls_test_server.h"

namespace writ::http {
namespace {

using sinks::testing::HttpReceiver;

// Sets an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(HttpClient, KeepsItsConnectionBetweenRequests) {
  auto s = Server::Create({});
  ASSERT_TRUE(s.ok()) << s.status();
  (*s)->AddRoute("GET", "/x", [](const Request&) {
    Response r;
    r.body = "ok";
    return r;
  });
  ASSERT_TRUE((*s)->Start().ok());
  Client c;
  ClientRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", (*s)->port(), "/x");
  for (int i = 0; i < 3; ++i) {
    auto r = c.Fetch(req);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, "ok");
  }
  EXPECT_EQ((*s)->stats().connections_accepted, 1u);
  EXPECT_EQ((*s)->stats().requests, 3u);
}

// The usual proxy variables are honoured: the request goes to the proxy in absolute form (nothing
// leaves this host: the proxy is the test's own receiver, and the name is never resolved here).
TEST(HttpClient, UsesTheProxyFromTheEnvironment) {
  HttpReceiver proxy;
  ASSERT_TRUE(proxy.ok());
  ScopedEnv env("http_proxy", absl::StrCat("http://127.0.0.1:", proxy.port()));
  ClientRequest req;
  req.method = "POST";
  req.url = "http://siem.writ-test.invalid:8088/services/collector/event";
  req.body = "{}";
  auto r = Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(proxy.requests().size(), 1u);
  EXPECT_EQ(proxy.requests()[0].request_line,
            "POST http://siem.writ-test.invalid:8088/services/collector/event HTTP/1.1");
}

// A loopback destination never goes through a proxy, even one set for everything.
TEST(HttpClient, NeverProxiesLoopback) {
  HttpReceiver rx;
  ScopedEnv e1("http_proxy", "http://127.0.0.1:1");
  ScopedEnv e2("ALL_PROXY", "http://127.0.0.1:1");
  ClientRequest req;
  req.method = "POST";
  req.url = absl::StrCat("http://127.0.0.1:", rx.port(), "/hook");
  auto r = Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(rx.requests().size(), 1u);
  EXPECT_EQ(rx.requests()[0].request_line, "POST /hook HTTP/1.1");
  // No Content-Type or Expect the caller did not ask for.
  EXPECT_FALSE(absl::StrContains(rx.requests()[0].headers, "Content-Type"))
      << rx.requests()[0].headers;
  EXPECT_FALSE(absl::StrContains(rx.requests()[0].headers, "Expect")) << rx.requests()[0].headers;
}

TEST(HttpClient, BoundsTheResponseAndTheWait) {
  auto s = Server::Create({});
  ASSERT_TRUE(s.ok());
  (*s)->AddRoute("GET", "/big", [](const Request&) {
    Response r;
    r.body = std::string(100000, 'x');
    return r;
  });
  ASSERT_TRUE((*s)->Start().ok());
  ClientRequest req;
  req.url = absl::StrCat("http://127.0.0.1:", (*s)->port(), "/big");
  req.max_response_bytes = 4096;
  auto r = Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "exceeds 4096 bytes")) << r.status();

  HttpReceiver hang(0, HttpReceiver::Mode::kHang, 1);
  req.url = absl::StrCat("http://127.0.0.1:", hang.port(), "/");
  req.timeout = absl::Milliseconds(300);
  r = Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(net::FailureOf(r.status()), net::Failure::kTimeout);
}

TEST(HttpClient, RefusesHeaderInjectionAndUserinfo) {
  ClientRequest req;
  req.url = "http://127.0.0.1:1/";
  req.headers = {{"X-A", "v\r\nX-Injected: 1"}};
  EXPECT_EQ(Fetch(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.headers = {};
  req.url = "http://user:secret@127.0.0.1:1/";
  auto r = Fetch(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(absl::StrContains(r.status().message(), "secret"));
  req.url = "http://127.0.0.1:1/";
  r = Fetch(req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "127.0.0.1:1: connect: Connection refused");
  EXPECT_EQ(net::FailureOf(r.status()), net::Failure::kConnect);
}

class HttpClientTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("writ-curl-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    pki_ = std::make_unique<testing::TestPki>(dir_.string(), "siem");
    server_ = pki_->Issue("server", "localhost", {"IP:127.0.0.1", "DNS:localhost"});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::unique_ptr<testing::TestPki> pki_;
  testing::TestPki::Files server_;
};

constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";

TEST_F(HttpClientTls, OffersHttp2AndPresentsAClientCertificate) {
  testing::TlsTestServer srv(server_, testing::TlsTestServer::Mode::kHttp, kOk);
  srv.RequireClientCert(pki_->ca().cert);
  ClientRequest req;
  req.url = absl::StrCat("https://127.0.0.1:", srv.port(), "/");
  req.ca_file = pki_->ca().cert;
  // Without a client certificate the receiver refuses the handshake.
  auto r = Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(srv.handshakes_ok(), 0);
  const auto client = pki_->Issue("client", "writd", {"DNS:writd"});
  req.cert = client.cert;
  req.key = client.key;
  r = Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(srv.handshakes_ok(), 1);
  const std::vector<std::string> offered = srv.alpn_offered();
  EXPECT_NE(std::find(offered.begin(), offered.end(), "h2"), offered.end()) << offered.size();
  // A missing key file is named.
  req.key = (dir_ / "missing.key").string();
  r = Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(net::FailureOf(r.status()), net::Failure::kTls);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "missing.key")) << r.status();
}

}  // namespace
}  // namespace writ::http
