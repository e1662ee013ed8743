// net::Conn against an in-process TLS server with throwaway certificates: a verified handshake
// carries bytes both ways; an unknown CA, a name mismatch, a self-signed server checked against the
// system store, a missing CA file and a server that never answers the handshake each fail with a
// message naming the cause and the right Failure kind.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "net/tls_conn.h"
#include "tls_test_server.h"

namespace writ::net {
namespace {

namespace fs = std::filesystem;
using writ::testing::TestPki;
using writ::testing::TlsTestServer;

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / absl::StrCat("writ-net-", name, "-", ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";

TlsOptions Verify(const std::string& ca) {
  TlsOptions t;
  t.enabled = true;
  t.ca_file = ca;
  return t;
}

class NetTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    pki_ = std::make_unique<TestPki>(dir_.string(), "good");
    other_ = std::make_unique<TestPki>(dir_.string(), "other");
    server_ = pki_->Issue("server", "localhost", {"IP:127.0.0.1", "DNS:localhost"});
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::unique_ptr<TestPki> pki_, other_;
  TestPki::Files server_;
};

TEST_F(NetTls, VerifiedHandshakeCarriesData) {
  TlsTestServer srv(server_, TlsTestServer::Mode::kHttp, kOk);
  ASSERT_TRUE(srv.ok());
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    Conn c;
    ASSERT_TRUE(c.Connect(host, srv.port(), Verify(pki_->ca().cert), absl::Seconds(5)).ok())
        << host;
    EXPECT_TRUE(c.tls());
    ASSERT_TRUE(c.WriteAll("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").ok());
    std::string resp;
    ASSERT_TRUE(c.ReadUntil(&resp, [](const std::string&) { return false; }).ok());  // to EOF
    EXPECT_EQ(resp, kOk);
  }
  EXPECT_EQ(srv.handshakes_ok(), 2);
}

TEST_F(NetTls, UnknownCaIsAVerifyFailure) {
  TlsTestServer srv(server_, TlsTestServer::Mode::kHttp, kOk);
  Conn c;
  absl::Status st = c.Connect("127.0.0.1", srv.port(), Verify(other_->ca().cert), absl::Seconds(5));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(FailureOf(st), Failure::kTlsVerify) << st;
  EXPECT_EQ(st.message(),
            "TLS handshake with 127.0.0.1: certificate verify failed: unable to get local issuer "
            "certificate");
  EXPECT_FALSE(c.connected());
}

TEST_F(NetTls, NameMismatchIsAVerifyFailure) {
  // Valid chain, but issued to another host: by IP and by DNS name.
  const TestPki::Files wrong =
      pki_->Issue("wrong", "siem.example", {"DNS:siem.example", "IP:10.9.9.9"});
  TlsTestServer srv(wrong, TlsTestServer::Mode::kHttp, kOk);
  Conn c;
  absl::Status st = c.Connect("127.0.0.1", srv.port(), Verify(pki_->ca().cert), absl::Seconds(5));
  EXPECT_EQ(FailureOf(st), Failure::kTlsVerify) << st;
  EXPECT_NE(st.message().find("IP address mismatch"), std::string::npos) << st;
  st = c.Connect("localhost", srv.port(), Verify(pki_->ca().cert), absl::Seconds(5));
  EXPECT_EQ(FailureOf(st), Failure::kTlsVerify) << st;
  EXPECT_NE(st.message().find("hostname mismatch"), std::string::npos) << st;
}

TEST_F(NetTls, SystemStoreRefusesAPrivateCa) {
  TlsTestServer srv(server_, TlsTestServer::Mode::kHttp, kOk);
  Conn c;
  absl::Status st = c.Connect("127.0.0.1", srv.port(), Verify(""), absl::Seconds(5));
  EXPECT_EQ(FailureOf(st), Failure::kTlsVerify) << st;
}

TEST_F(NetTls, VerifyOffAcceptsAnyCertificate) {
  TlsTestServer srv(server_, TlsTestServer::Mode::kHttp, kOk);
  TlsOptions t = Verify(other_->ca().cert);
  t.verify = false;
  Conn c;
  EXPECT_TRUE(c.Connect("127.0.0.1", srv.port(), t, absl::Seconds(5)).ok());
}

TEST_F(NetTls, MissingCaFileNamesIt) {
  TlsTestServer srv(server_, TlsTestServer::Mode::kHttp, kOk);
  Conn c;
  absl::Status st =
      c.Connect("127.0.0.1", srv.port(), Verify((dir_ / "nope.pem").string()), absl::Seconds(5));
  EXPECT_EQ(FailureOf(st), Failure::kTls) << st;
  EXPECT_NE(st.message().find("load CA file " + (dir_ / "nope.pem").string()), std::string::npos)
      << st;
}

TEST_F(NetTls, SilentHandshakeTimesOut) {
  TlsTestServer srv(server_, TlsTestServer::Mode::kHangHandshake);
  Conn c;
  const absl::Time t0 = absl::Now();
  absl::Status st =
      c.Connect("127.0.0.1", srv.port(), Verify(pki_->ca().cert), absl::Milliseconds(300));
  EXPECT_EQ(FailureOf(st), Failure::kTimeout) << st;
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3));  // bounded by the timeout, not hanging
}

TEST(NetConn, RefusedAndUnresolvable) {
  Conn c;
  absl::Status st = c.Connect("127.0.0.1", 1, TlsOptions{}, absl::Seconds(2));
  EXPECT_EQ(FailureOf(st), Failure::kConnect) << st;
  EXPECT_EQ(st.message(), "127.0.0.1:1: connect: Connection refused");
  st = c.Connect("no-such-host.invalid", 80, TlsOptions{}, absl::Seconds(2));
  EXPECT_EQ(FailureOf(st), Failure::kResolve) << st;
  EXPECT_EQ(FailureOf(absl::OkStatus()), Failure::kNone);
  EXPECT_EQ(FailureOf(absl::InternalError("x")), Failure::kNone);
}

TEST(NetConn, SplitHostPort) {
  std::string h;
  int p = 0;
  ASSERT_TRUE(SplitHostPort("[::1]:6514", &h, &p).ok());
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 6514);
  EXPECT_FALSE(SplitHostPort("host:0", &h, &p).ok());
  EXPECT_FALSE(SplitHostPort("host", &h, &p).ok());
}

}  // namespace
}  // namespace writ::net
