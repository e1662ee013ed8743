// Test-only TLS material and an in-process TLS server on 127.0.0.1.
//
// TestPki makes a throwaway CA and certificates it signs (ECDSA P-256, with the OpenSSL API, so
// unit tests need no openssl binary), written as PEM files into a directory. TlsTestServer accepts
// TLS connections with a given certificate and either records everything the client sends (syslog
// over TLS) or answers each HTTP request with a fixed response. The certificate can be swapped
// while it runs (a receiver that starts presenting a valid certificate).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace writ::testing {

class TestPki {
 public:
  struct Files {
    std::string cert;  // PEM certificate path
    std::string key;   // PEM private key path
  };

  // A self-signed CA "<name>" with cert/key under dir/<name>-ca.{crt,key}.
  TestPki(const std::string& dir, const std::string& name) : dir_(dir) {
    ca_key_ = NewKey();
    ca_ = NewCert(ca_key_, nullptr, nullptr, name + " test CA", {}, /*ca=*/true);
    ca_files_ = Write(name + "-ca", ca_, ca_key_);
  }
  ~TestPki() {
    X509_free(ca_);
    EVP_PKEY_free(ca_key_);
  }
  const Files& ca() const { return ca_files_; }

  // A leaf certificate signed by this CA. `sans` like {"IP:127.0.0.1", "DNS:localhost"}.
  Files Issue(const std::string& file_name, const std::string& cn,
              const std::vector<std::string>& sans) {
    EVP_PKEY* key = NewKey();
    X509* cert = NewCert(key, ca_, ca_key_, cn, sans, /*ca=*/false);
    Files f = Write(file_name, cert, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return f;
  }

 private:
  static EVP_PKEY* NewKey() { return EVP_EC_gen("P-256"); }

  static X509* NewCert(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, const std::string& cn,
                       const std::vector<std::string>& sans, bool ca) {
    static std::atomic<long> serial{1000};
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
    auto add = [&](int nid, const std::string& value) {
      X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
      X509_add_ext(x, e, -1);
      X509_EXTENSION_free(e);
    };
    if (ca) {
      add(NID_basic_constraints, "critical,CA:TRUE");
      add(NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
      add(NID_basic_constraints, "CA:FALSE");
      add(NID_ext_key_usage, "serverAuth,clientAuth");
      std::string alt;
      for (const auto& s : sans) alt += (alt.empty() ? "" : ",") + s;
      if (!alt.empty()) add(NID_subject_alt_name, alt);
    }
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return x;
  }

  Files Write(const std::string& base, X509* cert, EVP_PKEY* key) {
    Files f{dir_ + "/" + base + ".crt", dir_ + "/" + base + ".key"};
    FILE* c = std::fopen(f.cert.c_str(), "w");
    PEM_write_X509(c, cert);
    std::fclose(c);
    FILE* k = std::fopen(f.key.c_str(), "w");
    PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(k);
    return f;
  }

  std::string dir_;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_ = nullptr;
  Files ca_files_;
};

class TlsTestServer {
 public:
  enum class Mode {
    kRecord,         // read everything each connection sends; received() is the concatenation
    kHttp,           // read one HTTP request, answer http_response, close
    kHangHandshake,  // accept TCP, never answer the TLS handshake
  };

  TlsTestServer(const TestPki::Files& cert, Mode mode, std::string http_response = "")
      : mode_(mode), http_response_(std::move(http_response)) {
    SetCertificate(cert);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && ::listen(fd_, 16) == 0;
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TlsTestServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    std::lock_guard<std::mutex> l(mu_);
    SSL_CTX_free(ctx_);
  }

  // Later connections present this certificate.
  void SetCertificate(const TestPki::Files& cert) {
    cert_ = cert;
    Configure();
  }
  // Later handshakes require a client certificate chaining to ca_file (mutual TLS).
  void RequireClientCert(const std::string& ca_file) {
    client_ca_ = ca_file;
    Configure();
  }

  bool ok() const { return ok_; }
  int port() const { return port_; }
  int handshakes_ok() const { return handshakes_ok_; }
  int handshakes_failed() const { return handshakes_failed_; }
  std::string received() {
    std::lock_guard<std::mutex> l(mu_);
    return received_;
  }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  // The ALPN protocols the last client offered, e.g. {"h2", "http/1.1"} (none is selected).
  std::vector<std::string> alpn_offered() {
    std::lock_guard<std::mutex> l(mu_);
    return alpn_offered_;
  }

 private:
  void Configure() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx, cert_.cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, cert_.key.c_str(), SSL_FILETYPE_PEM);
    if (!client_ca_.empty()) {
      SSL_CTX_load_verify_locations(ctx, client_ca_.c_str(), nullptr);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    SSL_CTX_set_alpn_select_cb(ctx, &TlsTestServer::OnAlpn, this);
    std::lock_guard<std::mutex> l(mu_);
    SSL_CTX_free(ctx_);
    ctx_ = ctx;
  }

  static int OnAlpn(SSL*, const unsigned char**, unsigned char*, const unsigned char* in,
                    unsigned inlen, void* arg) {
    auto* self = static_cast<TlsTestServer*>(arg);
    std::vector<std::string> offered;
    for (unsigned i = 0; i < inlen && i + 1 + in[i] <= inlen; i += 1 + in[i]) {
      offered.emplace_back(reinterpret_cast<const char*>(in + i + 1), in[i]);
    }
    // Called during a handshake, under no lock of ours (Serve takes mu_ only around SSL_new).
    std::lock_guard<std::mutex> l(self->mu_);
    self->alpn_offered_ = std::move(offered);
    return SSL_TLSEXT_ERR_NOACK;  // select nothing: the client speaks HTTP/1.1
  }

  void Loop() {
    // A client that refuses our certificate hangs up; the alert we may still write must not SIGPIPE
    // the test process (SIGPIPE goes to the writing thread, so blocking it here is enough).
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::vector<int> hung;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (mode_ == Mode::kHangHandshake) {
        hung.push_back(c);
        continue;
      }
      Serve(c);
      ::close(c);
    }
    for (int c : hung) ::close(c);
  }

  void Serve(int c) {
    SSL* ssl;
    {
      std::lock_guard<std::mutex> l(mu_);
      ssl = SSL_new(ctx_);
    }
    SSL_set_fd(ssl, c);
    // The handshake may wait for a client loading the system CA store on a busy machine.
    timeval hs{10, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &hs, sizeof(hs));
    const int accepted = SSL_accept(ssl);
    timeval tv{0, 200000};  // then short reads, to notice stop_
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (accepted != 1) {
      ++handshakes_failed_;
      ERR_clear_error();
      SSL_free(ssl);
      return;
    }
    ++handshakes_ok_;
    std::string buf;
    char tmp[16384];
    for (int i = 0; i < 100000 && !stop_; ++i) {
      size_t n = 0;
      const int rc = SSL_read_ex(ssl, tmp, sizeof(tmp), &n);
      if (rc != 1) {
        // A sink keeps its connection open: a read timeout means "nothing more for now".
        if (SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ && !stop_) {
          ERR_clear_error();
          continue;
        }
        break;
      }
      if (mode_ == Mode::kRecord) {
        std::lock_guard<std::mutex> l(mu_);
        received_.append(tmp, n);
        continue;
      }
      buf.append(tmp, n);
      const size_t he = buf.find("\r\n\r\n");
      if (he == std::string::npos) continue;
      size_t need = 0;
      const size_t cl = buf.find("Content-Length: ");
      if (cl != std::string::npos && cl < he) need = std::stoul(buf.substr(cl + 16));
      if (buf.size() < he + 4 + need) continue;
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(buf.substr(0, he + 4 + need));
      }
      size_t w = 0;
      SSL_write_ex(ssl, http_response_.data(), http_response_.size(), &w);
      SSL_shutdown(ssl);
      break;
    }
    ERR_clear_error();
    SSL_free(ssl);
  }

  const Mode mode_;
  const std::string http_response_;
  TestPki::Files cert_;
  std::string client_ca_;
  std::vector<std::string> alpn_offered_;
  int fd_ = -1;
  int port_ = 0;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> handshakes_ok_{0};
  std::atomic<int> handshakes_failed_{0};
  std::mutex mu_;
  SSL_CTX* ctx_ = nullptr;
  std::string received_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace writ::testing
