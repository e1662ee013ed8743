// File/stdout, syslog (RFC 5424 + RFC 6587 octet counting, over TCP or TLS per RFC 5425) and HTTP
// (webhook JSON array, Splunk HEC) transports. The HTTP client is deliberately minimal: one request
// per connection, Content-Length bodies, status line checked; enough for webhooks and HEC.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "sinks/json_writer.h"
#include "sinks/transport.h"
#include "util/status_macros.h"

namespace writ::sinks {
namespace {

std::string OpenSslError(absl::string_view what) {
  char buf[256];
  const unsigned long e = ERR_get_error();
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::StrCat(what, ": ", e ? buf : "unknown TLS error");
}

// ---- file / stdout ---------------------------------------------------------------------------

class FileTransport final : public Transport {
 public:
  explicit FileTransport(const SinkConfig& c) : c_(c) {}
  ~FileTransport() override { Close(); }

  absl::Status Open() {
    if (c_.path == "-") {
      fd_ = STDOUT_FILENO;
      return absl::OkStatus();
    }
    fd_ = ::open(c_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0) return ErrnoStatus(errno, absl::StrCat("open ", c_.path));
    struct stat st;
    if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    return absl::OkStatus();
  }

  absl::Status Send(const std::vector<std::string>& lines) override {
    if (fd_ < 0) RETURN_IF_ERROR(Open());
    buf_.clear();
    for (const auto& l : lines) {
      // Rotate before a write would take the file past max_bytes (never mid-line).
      if (c_.path != "-" && c_.max_bytes > 0 && size_ + buf_.size() > 0 &&
          size_ + buf_.size() + l.size() + 1 > c_.max_bytes) {
        RETURN_IF_ERROR(WriteAll());
        RETURN_IF_ERROR(Rotate());
      }
      buf_.append(l);
      buf_.push_back('\n');
    }
    RETURN_IF_ERROR(WriteAll());
    if (c_.fsync && c_.path != "-" && ::fsync(fd_) != 0) {
      return ErrnoStatus(errno, absl::StrCat("fsync ", c_.path));
    }
    return absl::OkStatus();
  }

  void Close() override {
    if (fd_ > STDERR_FILENO) ::close(fd_);
    fd_ = -1;
  }

 private:
  absl::Status WriteAll() {
    size_t off = 0;
    while (off < buf_.size()) {
      const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        // Drop what was written from the batch's buffer so a retry does not duplicate it.
        buf_.erase(0, off);
        return ErrnoStatus(errno, absl::StrCat("write ", c_.path));
      }
      off += static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
    buf_.clear();
    return absl::OkStatus();
  }

  // path.(N-1) -> path.N, ..., path -> path.1, then a fresh path.
  absl::Status Rotate() {
    if (c_.fsync) ::fsync(fd_);
    Close();
    for (int i = c_.max_files - 1; i >= 1; --i) {
      const std::string from = absl::StrCat(c_.path, ".", i);
      const std::string to = absl::StrCat(c_.path, ".", i + 1);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, absl::StrCat("rotate ", from));
      }
    }
    if (::rename(c_.path.c_str(), absl::StrCat(c_.path, ".1").c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("rotate ", c_.path));
    }
    size_ = 0;
    return Open();
  }

  const SinkConfig c_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string buf_;
};

// ---- TCP (+TLS) connection ------------------------------------------------------------------

class Conn {
 public:
  ~Conn() { Close(); }

  absl::Status Connect(const std::string& host, int port, const TlsConfig& tls,
                       absl::Duration timeout) {
    Close();
    timeout_ = timeout;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port_s = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
      return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", gai_strerror(rc)));
    }
    absl::Status st = absl::UnavailableError("no address");
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      st = ConnectOne(ai);
      if (st.ok()) break;
    }
    ::freeaddrinfo(res);
    if (!st.ok()) return absl::UnavailableError(absl::StrCat(host, ":", port, ": ", st.message()));
    if (tls.enabled) {
      st = StartTls(host, tls);
      if (!st.ok()) {
        Close();
        return st;
      }
    }
    return absl::OkStatus();
  }

  bool connected() const { return fd_ >= 0; }

  // True when the peer closed or reset the connection (checked before reusing it).
  bool PeerGone() {
    if (fd_ < 0) return true;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP)) return true;
    if (ssl_ != nullptr) return SSL_pending(ssl_) == 0 && PeekClosed();
    return PeekClosed();
  }

  absl::Status WriteAll(std::string_view data) {
    size_t off = 0;
    const absl::Time deadline = absl::Now() + timeout_;
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
          return absl::UnavailableError(OpenSslError("TLS write"));
        }
        n = static_cast<ssize_t>(w);
      } else {
        n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          RETURN_IF_ERROR(Wait(POLLOUT, deadline));
          continue;
        }
        if (n < 0) return ErrnoStatus(errno, "send");
      }
      off += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  // Reads until `done(buffer)` or EOF or the deadline.
  template <typename Done>
  absl::Status ReadUntil(std::string* buf, Done done) {
    const absl::Time deadline = absl::Now() + timeout_;
    char tmp[4096];
    while (!done(*buf)) {
      ssize_t n;
      if (ssl_ != nullptr) {
        size_t r = 0;
        const int rc = SSL_read_ex(ssl_, tmp, sizeof(tmp), &r);
        if (rc <= 0) {
          const int err = SSL_get_error(ssl_, rc);
          if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            RETURN_IF_ERROR(Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline));
            continue;
          }
          if (err == SSL_ERROR_ZERO_RETURN) return absl::OkStatus();
          return absl::UnavailableError(OpenSslError("TLS read"));
        }
        n = static_cast<ssize_t>(r);
      } else {
        n = ::recv(fd_, tmp, sizeof(tmp), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          RETURN_IF_ERROR(Wait(POLLIN, deadline));
          continue;
        }
        if (n < 0) return ErrnoStatus(errno, "recv");
        if (n == 0) return absl::OkStatus();
      }
      buf->append(tmp, static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  void Close() {
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

 private:
  absl::Status Wait(short events, absl::Time deadline) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("I/O timed out");
    pollfd p{fd_, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (rc < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    if (rc == 0) return absl::DeadlineExceededError("I/O timed out");
    return absl::OkStatus();
  }

  bool PeekClosed() {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  absl::Status ConnectOne(const addrinfo* ai) {
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
      absl::Status st = Wait(POLLOUT, absl::Now() + timeout_);
      int err = 0;
      socklen_t len = sizeof(err);
      if (st.ok()) ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (!st.ok() || err != 0) {
        Close();
        return st.ok() ? ErrnoStatus(err, "connect") : st;
      }
    }
    return absl::OkStatus();
  }

  absl::Status StartTls(const std::string& host, const TlsConfig& tls) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (ctx_ == nullptr) return absl::InternalError(OpenSslError("SSL_CTX_new"));
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    if (tls.verify) {
      if (SSL_CTX_load_verify_locations(ctx_, tls.ca.c_str(), nullptr) != 1) {
        return absl::FailedPreconditionError(OpenSslError(absl::StrCat("load tls.ca ", tls.ca)));
      }
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    }
    if (!tls.cert.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, tls.cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        return absl::FailedPreconditionError(OpenSslError("load tls.cert/tls.key"));
      }
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    // Name check: an IP literal must match an IP SAN, anything else a DNS name (and SNI).
    in6_addr a6;
    in_addr a4;
    const bool is_ip = inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
                       inet_pton(AF_INET6, host.c_str(), &a6) == 1;
    if (tls.verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      if (is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
      }
    }
    if (!is_ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
    const absl::Time deadline = absl::Now() + timeout_;
    for (;;) {
      const int rc = SSL_connect(ssl_);
      if (rc == 1) break;
      const int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        RETURN_IF_ERROR(Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline));
        continue;
      }
      const long vr = SSL_get_verify_result(ssl_);
      if (vr != X509_V_OK) {
        return absl::UnavailableError(absl::StrCat("TLS handshake with ", host,
                                                   ": certificate verify failed: ",
                                                   X509_verify_cert_error_string(vr)));
      }
      return absl::UnavailableError(OpenSslError(absl::StrCat("TLS handshake with ", host)));
    }
    return absl::OkStatus();
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  absl::Duration timeout_ = absl::Seconds(5);
};

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

// ---- syslog ----------------------------------------------------------------------------------

class SyslogTransport final : public Transport {
 public:
  SyslogTransport(const SinkConfig& c, std::string host, int port)
      : c_(c), host_(std::move(host)), port_(port) {
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') std::strcpy(name, "-");
    hostname_ = name;
    pid_ = static_cast<int>(::getpid());
  }

  absl::Status Send(const std::vector<std::string>& lines) override {
    if (conn_.connected() && conn_.PeerGone()) Broken();
    if (!conn_.connected()) {
      RETURN_IF_ERROR(conn_.Connect(host_, port_, c_.tls, c_.timeout));
    }
    buf_.clear();
    const absl::Time now = absl::Now();
    for (const auto& l : lines) AppendSyslogFrame(l, hostname_, "writ", pid_, now, &buf_);
    absl::Status st = conn_.WriteAll(buf_);
    if (!st.ok()) {
      Broken();
      return st;
    }
    // Syslog over TCP has no acknowledgement: remember what this connection carried recently, so a
    // later break re-sends it (duplicates carry the same event id).
    for (const auto& l : lines) recent_.push_back({now, l});
    const absl::Time horizon = now - c_.resend_window;
    while (!recent_.empty() && recent_.front().first < horizon) recent_.pop_front();
    while (recent_.size() > 100000) recent_.pop_front();
    return absl::OkStatus();
  }

  std::vector<std::string> TakeUnconfirmed() override {
    if (conn_.connected() && conn_.PeerGone()) Broken();
    std::vector<std::string> out;
    out.swap(unconfirmed_);
    return out;
  }

  void Close() override { conn_.Close(); }

 private:
  void Broken() {
    conn_.Close();
    for (auto& [t, l] : recent_) unconfirmed_.push_back(std::move(l));
    recent_.clear();
  }

  const SinkConfig c_;
  const std::string host_;
  const int port_;
  std::string hostname_;
  int pid_ = 0;
  Conn conn_;
  std::string buf_;
  std::deque<std::pair<absl::Time, std::string>> recent_;
  std::vector<std::string> unconfirmed_;
};

// ---- HTTP webhook / Splunk HEC -------------------------------------------------------------

class HttpTransport final : public Transport {
 public:
  HttpTransport(const SinkConfig& c, Url url) : c_(c), url_(std::move(url)) {
    if (c_.type == "hec" && (url_.path.empty() || url_.path == "/")) {
      url_.path = "/services/collector/event";
    }
  }

  absl::Status Send(const std::vector<std::string>& lines) override {
    body_.clear();
    if (c_.type == "hec") {
      // HEC accepts concatenated event objects in one request.
      for (const auto& l : lines) {
        body_.append(R"({"sourcetype":"writ:)");
        body_.append(c_.format == Format::kOcsf ? "ocsf" : "json");
        body_.append(R"(","source":"writd","event":)");
        body_.append(l);
        body_.append("}\n");
      }
    } else {
      body_.push_back('[');
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) body_.push_back(',');
        body_.append(lines[i]);
      }
      body_.push_back(']');
    }
    std::string req = absl::StrCat("POST ", url_.path.empty() ? "/" : url_.path,
                                   " HTTP/1.1\r\nHost: ", url_.host, ":", url_.port,
                                   "\r\nUser-Agent: writd\r\nContent-Type: application/json\r\n"
                                   "Content-Length: ", body_.size(), "\r\nConnection: close\r\n");
    if (c_.type == "hec") absl::StrAppend(&req, "Authorization: Splunk ", c_.token, "\r\n");
    req.append("\r\n");
    Conn conn;
    RETURN_IF_ERROR(conn.Connect(url_.host, url_.port, c_.tls, c_.timeout));
    RETURN_IF_ERROR(conn.WriteAll(req));
    RETURN_IF_ERROR(conn.WriteAll(body_));
    std::string resp;
    RETURN_IF_ERROR(conn.ReadUntil(&resp, [](const std::string& b) {
      return b.find("\r\n") != std::string::npos;
    }));
    // "HTTP/1.1 200 OK"
    const size_t sp = resp.find(' ');
    int code = 0;
    if (!absl::StartsWith(resp, "HTTP/1.") || sp == std::string::npos ||
        std::from_chars(resp.data() + sp + 1, resp.data() + std::min(resp.size(), sp + 4), code)
                .ec != std::errc()) {
      return absl::UnavailableError(
          absl::StrCat("http ", url_.host, ":", url_.port, ": no HTTP response"));
    }
    if (code < 200 || code > 299) {
      return absl::UnavailableError(
          absl::StrCat("http ", url_.host, ":", url_.port, url_.path, ": status ", code));
    }
    return absl::OkStatus();
  }

 private:
  const SinkConfig c_;
  Url url_;
  std::string body_;
};

}  // namespace

void AppendSyslogFrame(std::string_view msg, std::string_view hostname, std::string_view app,
                       int procid, absl::Time now, std::string* out) {
  // PRI 134 = facility local0 (16) * 8 + severity informational (6). MSGID "event", no SD.
  const std::string header = absl::StrCat(
      "<134>1 ", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", now, absl::UTCTimeZone()), " ",
      hostname.empty() ? absl::string_view("-") : absl::string_view(hostname.data(), hostname.size()),
      " ", absl::string_view(app.data(), app.size()), " ", procid, " event - ");
  absl::StrAppend(out, header.size() + msg.size(), " ", header);
  out->append(msg.data(), msg.size());
}

absl::StatusOr<Url> ParseUrl(const std::string& url) {
  Url u;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    u.tls = true;
    u.port = 443;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    u.port = 80;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("expected http:// or https:// URL, got '", url,
                                                   "'"));
  }
  const size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  u.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostport.empty()) return absl::InvalidArgumentError("URL has no host");
  const size_t colon = hostport.rfind(':');
  if (colon != absl::string_view::npos && hostport.back() != ']') {
    int port = 0;
    const char* b = hostport.data() + colon + 1;
    const char* e = hostport.data() + hostport.size();
    if (std::from_chars(b, e, port).ptr != e || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in URL '", url, "'"));
    }
    u.port = port;
    hostport = hostport.substr(0, colon);
  }
  if (hostport.size() > 2 && hostport.front() == '[') hostport = hostport.substr(1, hostport.size() - 2);
  u.host = std::string(hostport);
  return u;
}

absl::StatusOr<std::unique_ptr<Transport>> MakeFileTransport(const SinkConfig& c) {
  auto t = std::make_unique<FileTransport>(c);
  RETURN_IF_ERROR(t->Open());  // fail at configuration time on an unwritable path
  return std::unique_ptr<Transport>(std::move(t));
}

absl::StatusOr<std::unique_ptr<Transport>> MakeSyslogTransport(const SinkConfig& c) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(c.address, &host, &port));
  return std::unique_ptr<Transport>(new SyslogTransport(c, host, port));
}

absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(const SinkConfig& c) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(c.url));
  SinkConfig cc = c;
  if (u.tls) cc.tls.enabled = true;
  return std::unique_ptr<Transport>(new HttpTransport(cc, u));
}

}  // namespace writ::sinks
