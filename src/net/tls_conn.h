// Outbound TCP connection with optional TLS (OpenSSL), shared by the SIEM sinks (syslog RFC 5425,
// webhook/HEC over https) and the credential module's HTTP client (Vault, revocation webhooks).
// Blocking API over a non-blocking socket: every operation is bounded by a deadline. The server
// certificate is verified against a CA file or the system CA store, and its name against the host
// (an IP literal must match an IP SAN). Failures carry a Failure kind (FailureOf) so callers can
// count them by cause, e.g. writ_sink_errors_total{reason="tls_verify"}.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace writ::net {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;  // PEM bundle the server certificate must chain to; empty = system CA store
  std::string cert;     // client certificate chain (mutual TLS), optional; with key
  std::string key;
  bool verify = true;  // false: no certificate or name check (tests, explicit operator choice)
};

// Why a connection or an exchange failed.
enum class Failure {
  kNone,       // not a connection failure (or not tagged)
  kResolve,    // host name did not resolve
  kConnect,    // refused, unreachable, connect timed out
  kTlsVerify,  // the server certificate did not verify (CA, name, expiry)
  kTls,        // other TLS failure: handshake, protocol, bad local cert/key/CA file
  kTimeout,    // an established connection did not make progress before the deadline
  kIo,         // send/recv error, peer reset
};
const char* FailureName(Failure f);
Failure FailureOf(const absl::Status& st);
absl::Status WithFailure(absl::Status st, Failure f);

class Conn {
 public:
  Conn() = default;
  ~Conn() { Close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Resolves, connects (each address in turn) and, with tls.enabled, completes the handshake, all
  // within `timeout`. `timeout` is also the default bound for each later WriteAll/Read call.
  absl::Status Connect(const std::string& host, int port, const TlsOptions& tls,
                       absl::Duration timeout);
  bool connected() const { return fd_ >= 0; }
  bool tls() const { return ssl_ != nullptr; }

  // True when the peer closed or reset the connection (checked before reusing it).
  bool PeerGone();
  // Bytes written but not yet acknowledged by the peer's TCP stack (SIOCOUTQ; TLS record bytes).
  size_t UnackedBytes() const;

  // Writes all of data before the deadline (default: now + timeout).
  absl::Status WriteAll(std::string_view data, absl::Time deadline = absl::InfinitePast());
  // Appends up to `max` bytes that arrive before the deadline to *buf; returns the count, 0 at EOF.
  absl::StatusOr<size_t> ReadSome(std::string* buf, size_t max,
                                  absl::Time deadline = absl::InfinitePast());
  // Reads until done(*buf), EOF or the deadline (now + timeout).
  template <typename Done>
  absl::Status ReadUntil(std::string* buf, Done done) {
    const absl::Time deadline = absl::Now() + timeout_;
    while (!done(*buf)) {
      absl::StatusOr<size_t> n = ReadSome(buf, 4096, deadline);
      if (!n.ok()) return n.status();
      if (*n == 0) return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  void Close();

 private:
  absl::Status Wait(short events, absl::Time deadline);
  bool PeekClosed();
  absl::Status ConnectOne(const void* addrinfo, absl::Time deadline);
  absl::Status StartTls(const std::string& host, const TlsOptions& tls, absl::Time deadline);
  absl::Time DeadlineOr(absl::Time d) const {
    return d == absl::InfinitePast() ? absl::Now() + timeout_ : d;
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  absl::Duration timeout_ = absl::Seconds(5);
  std::string peer_;  // "host:port", for messages
};

// Splits "host:port" / "[v6]:port".
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port);

}  // namespace writ::net
