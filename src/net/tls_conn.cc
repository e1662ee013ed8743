#include "net/tls_conn.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "util/status_macros.h"

namespace writ::net {
namespace {

constexpr char kFailureUrl[] = "writ.net.Failure";

std::string OpenSslError(absl::string_view what) {
  char buf[256];
  const unsigned long e = ERR_get_error();
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::StrCat(what, ": ", e ? buf : "unknown TLS error");
}

// OpenSSL's socket BIO writes with send(fd, ..., 0): writing to a peer that has gone raises
// SIGPIPE, which kills a process that does not ignore it (writd does; a library should not depend
// on that). Blocks SIGPIPE on this thread for the scope and swallows one that became pending
// meanwhile.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t s;
      sigemptyset(&s);
      sigaddset(&s, SIGPIPE);
      const timespec zero{0, 0};
      while (sigtimedwait(&s, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

}  // namespace

const char* FailureName(Failure f) {
  switch (f) {
    case Failure::kNone:
      return "other";
    case Failure::kResolve:
      return "resolve";
    case Failure::kConnect:
      return "connect";
    case Failure::kTlsVerify:
      return "tls_verify";
    case Failure::kTls:
      return "tls";
    case Failure::kTimeout:
      return "timeout";
    case Failure::kIo:
      return "io";
  }
  return "other";
}

absl::Status WithFailure(absl::Status st, Failure f) {
  if (!st.ok()) st.SetPayload(kFailureUrl, absl::Cord(FailureName(f)));
  return st;
}

Failure FailureOf(const absl::Status& st) {
  const auto p = st.GetPayload(kFailureUrl);
  if (!p.has_value()) return Failure::kNone;
  const std::string name(*p);
  for (Failure f : {Failure::kResolve, Failure::kConnect, Failure::kTlsVerify, Failure::kTls,
                    Failure::kTimeout, Failure::kIo}) {
    if (name == FailureName(f)) return f;
  }
  return Failure::kNone;
}

absl::Status Conn::Connect(const std::string& host, int port, const TlsOptions& tls,
                           absl::Duration timeout) {
  Close();
  timeout_ = timeout;
  // One deadline for every address tried and the handshake, as the header promises (not for
  // getaddrinfo, which cannot be bounded).
  const absl::Time deadline = absl::Now() + timeout;
  peer_ = absl::StrCat(host, ":", port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    return WithFailure(
        absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc))),
        Failure::kResolve);
  }
  absl::Status st = absl::UnavailableError("no address");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    st = ConnectOne(ai, deadline);
    if (st.ok()) break;
  }
  ::freeaddrinfo(res);
  if (!st.ok()) {
    return WithFailure(absl::UnavailableError(absl::StrCat(host, ":", port, ": ", st.message())),
                       Failure::kConnect);
  }
  if (tls.enabled) {
    st = StartTls(host, tls, deadline);
    if (!st.ok()) {
      Close();
      return st;
    }
  }
  return absl::OkStatus();
}

bool Conn::PeerGone() {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP)) return true;
  if (ssl_ != nullptr) return SSL_pending(ssl_) == 0 && PeekClosed();
  return PeekClosed();
}

size_t Conn::UnackedBytes() const {
  int n = 0;
  if (fd_ < 0 || ::ioctl(fd_, SIOCOUTQ, &n) != 0 || n < 0) return 0;
  return static_cast<size_t>(n);
}

absl::Status Conn::WriteAll(std::string_view data, absl::Time deadline) {
  if (fd_ < 0) return WithFailure(absl::FailedPreconditionError("not connected"), Failure::kIo);
  deadline = DeadlineOr(deadline);
  std::optional<SigpipeGuard> nopipe;
  if (ssl_ != nullptr) nopipe.emplace();
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n;
    if (ssl_ != nullptr) {
      size_t w = 0;
      const int rc = SSL_write_ex(ssl_, data.data() + off, data.size() - off, &w);
      if (rc <= 0) {
        const int err = SSL_get_error(ssl_, rc);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
          RETURN_IF_ERROR(Wait(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline));
          continue;
        }
        return WithFailure(
            absl::UnavailableError(OpenSslError(absl::StrCat("TLS write to ", peer_))),
            Failure::kIo);
      }
      n = static_cast<ssize_t>(w);
    } else {
      n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        RETURN_IF_ERROR(Wait(POLLOUT, deadline));
        continue;
      }
      if (n < 0)
        return WithFailure(ErrnoStatus(errno, absl::StrCat("send to ", peer_)), Failure::kIo);
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> Conn::ReadSome(std::string* buf, size_t max, absl::Time deadline) {
  if (fd_ < 0) return WithFailure(absl::FailedPreconditionError("not connected"), Failure::kIo);
  deadline = DeadlineOr(deadline);
  std::optional<SigpipeGuard> nopipe;  // a TLS read can write (alerts, key updates)
  if (ssl_ != nullptr) nopipe.emplace();
  char tmp[16384];
  const size_t want = std::min(max, sizeof(tmp));
  for (;;) {
    if (ssl_ != nullptr) {
      size_t r = 0;
      const int rc = SSL_read_ex(ssl_, tmp, want, &r);
      if (rc <= 0) {
        const int err = SSL_get_error(ssl_, rc);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
          RETURN_IF_ERROR(Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline));
          continue;
        }
        if (err == SSL_ERROR_ZERO_RETURN) return 0;
        // A peer that closes without close_notify (common for Connection: close servers).
        if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return 0;
        if (err == SSL_ERROR_SSL &&
            ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
          ERR_clear_error();
          return 0;
        }
        return WithFailure(
            absl::UnavailableError(OpenSslError(absl::StrCat("TLS read from ", peer_))),
            Failure::kIo);
      }
      buf->append(tmp, r);
      return r;
    }
    const ssize_t n = ::recv(fd_, tmp, want, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      RETURN_IF_ERROR(Wait(POLLIN, deadline));
      continue;
    }
    if (n < 0)
      return WithFailure(ErrnoStatus(errno, absl::StrCat("recv from ", peer_)), Failure::kIo);
    buf->append(tmp, static_cast<size_t>(n));
    return static_cast<size_t>(n);
  }
}

void Conn::Close() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ctx_ != nullptr) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status Conn::Wait(short events, absl::Time deadline) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return WithFailure(absl::DeadlineExceededError(absl::StrCat(peer_, ": I/O timed out")),
                         Failure::kTimeout);
    }
    pollfd p{fd_, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return WithFailure(ErrnoStatus(errno, "poll"), Failure::kIo);
    if (rc == 0) {
      return WithFailure(absl::DeadlineExceededError(absl::StrCat(peer_, ": I/O timed out")),
                         Failure::kTimeout);
    }
    return absl::OkStatus();
  }
}

bool Conn::PeekClosed() {
  char c;
  const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

absl::Status Conn::ConnectOne(const void* p, absl::Time deadline) {
  const auto* ai = static_cast<const addrinfo*>(p);
  fd_ = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return ErrnoStatus(errno, "socket");
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      const int err = errno;
      Close();
      return ErrnoStatus(err, "connect");
    }
    absl::Status st = Wait(POLLOUT, deadline);
    int err = 0;
    socklen_t len = sizeof(err);
    if (st.ok()) ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (!st.ok() || err != 0) {
      Close();
      return st.ok() ? ErrnoStatus(err, "connect")
                     : absl::DeadlineExceededError("connect timed out");
    }
  }
  return absl::OkStatus();
}

absl::Status Conn::StartTls(const std::string& host, const TlsOptions& tls, absl::Time deadline) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) {
    return WithFailure(absl::InternalError(OpenSslError("SSL_CTX_new")), Failure::kTls);
  }
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  if (tls.verify) {
    const bool ok = tls.ca_file.empty()
                        ? SSL_CTX_set_default_verify_paths(ctx_) == 1
                        : SSL_CTX_load_verify_locations(ctx_, tls.ca_file.c_str(), nullptr) == 1;
    if (!ok) {
      return WithFailure(absl::FailedPreconditionError(OpenSslError(
                             tls.ca_file.empty() ? std::string("load the system CA store")
                                                 : absl::StrCat("load CA file ", tls.ca_file))),
                         Failure::kTls);
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!tls.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx_, tls.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return WithFailure(absl::FailedPreconditionError(OpenSslError(
                             absl::StrCat("load client cert ", tls.cert, " / key ", tls.key))),
                         Failure::kTls);
    }
  }
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr)
    return WithFailure(absl::InternalError(OpenSslError("SSL_new")), Failure::kTls);
  SSL_set_fd(ssl_, fd_);
  // Name check: an IP literal must match an IP SAN, anything else a DNS name (and SNI).
  in6_addr a6;
  in_addr a4;
  const bool is_ip =
      inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
  if (tls.verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
  }
  if (!is_ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
  SigpipeGuard
      nopipe;  // a refused certificate is answered with an alert to a peer that may be gone
  for (;;) {
    const int rc = SSL_connect(ssl_);
    if (rc == 1) break;
    const int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      absl::Status st = Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
      if (!st.ok()) {
        return WithFailure(absl::DeadlineExceededError(absl::StrCat("TLS handshake with ", peer_,
                                                                    ": no answer, timed out")),
                           Failure::kTimeout);
      }
      continue;
    }
    const long vr = SSL_get_verify_result(ssl_);
    if (tls.verify && vr != X509_V_OK) {
      ERR_clear_error();
      return WithFailure(absl::UnavailableError(absl::StrCat(
                             "TLS handshake with ", host,
                             ": certificate verify failed: ", X509_verify_cert_error_string(vr))),
                         Failure::kTlsVerify);
    }
    return WithFailure(
        absl::UnavailableError(OpenSslError(absl::StrCat("TLS handshake with ", host))),
        Failure::kTls);
  }
  return absl::OkStatus();
}

absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("expected host:port");
  *host = address.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  const char* b = address.data() + colon + 1;
  const char* e = address.data() + address.size();
  if (std::from_chars(b, e, *port).ptr != e || *port <= 0 || *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", address, "'"));
  }
  return absl::OkStatus();
}

}  // namespace writ::net
