// writ_http: writd's HTTP/1.1 server (token introspection and revocation, JWKS, discovery,
// /metrics), on Boost.Beast's parser and Boost.Asio (chosen by measurement: docs/architecture.md,
// "HTTP").
//
// A few threads (`workers`) run every connection asynchronously and the route handlers; an idle or
// slow connection holds a socket and a few hundred bytes, never a thread. Keep-alive. Every request
// has one deadline (`io_timeout`) from the moment the server waits for its first byte to its last,
// so a client that trickles bytes (slowloris) is cut off like a silent one; the response has its
// own. At `max_connections` a new connection closes the one that has waited longest for a request
// (never one whose handler runs), so idle connections cannot lock out a request. Requests are
// bounded (431 for the headers, 413 for the whole), chunked request bodies are refused (411), and
// the Host header must name this server (421 otherwise: a browser page whose name was rebound to
// 127.0.0.1 reads nothing). The listen address must be a loopback address unless the server speaks
// TLS (`tls`): then it may listen anywhere, the handshake counts inside the first request's
// deadline, and with a client CA a client certificate is asked for, verified when presented (an
// unverifiable one fails the handshake), and its identity handed to the handlers, which decide
// whether they need one (server_tls.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "http/parse.h"

namespace writ::http {

struct Request {
  std::string method;
  std::string path;                                          // %-decoded, without the query
  std::string query;                                         // raw, after '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string peer;  // "127.0.0.1:port"
  // TLS with a client CA: whether the client presented a certificate the server verified against
  // it, and that certificate's identity: its first URI SAN (a SPIFFE ID such as
  // spiffe://example.org/rp/db), else its subject CN. false and "" otherwise.
  bool client_verified = false;
  std::string client_identity;

  // First header with this (case-insensitive) name, or empty.
  std::string Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using Handler = std::function<Response(const Request&)>;

// PEM files, read once by Server::Create. TLS 1.2 and 1.3 only.
struct TlsOptions {
  std::string cert_file;  // the server's certificate, then any intermediates
  std::string key_file;
  // "": no client certificate is asked for. Else one is asked for, optional, and verified against
  // these CAs when presented.
  std::string client_ca_file;
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; a loopback host unless tls is enabled
  TlsOptions tls;
  // Host header names served besides the listen address's host and "localhost" (case-insensitive,
  // with or without this server's port). Any other Host gets 421.
  std::vector<std::string> allowed_hosts;
  int workers = 2;                       // threads running the connections and the handlers: 1..64
  size_t max_request_bytes = 64 * 1024;  // request line + headers + body; beyond: 413
  size_t max_header_bytes = 16 * 1024;   // request line + headers; beyond: 431
  size_t max_connections = 256;          // open connections; see the banner for what happens beyond
  // Per request: from the wait for its first byte to its last (also the keep-alive idle time), and
  // again for writing the response.
  absl::Duration io_timeout = absl::Seconds(5);
};

// Counters since Start(); every connection or request the server refuses or cuts off is counted.
struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_evicted = 0;  // closed at max_connections to make room for a new one
  uint64_t connections_refused = 0;  // accept failed (e.g. out of file descriptors)
  uint64_t connections_open = 0;
  uint64_t requests = 0;        // answered by a route, 404 or 405
  uint64_t timeouts = 0;        // request not complete within io_timeout (408 or closed)
  uint64_t too_large = 0;       // 413 and 431
  uint64_t bad_requests = 0;    // 400 and 411: malformed, chunked, missing Host
  uint64_t host_refused = 0;    // 421: Host names another server
  uint64_t handler_errors = 0;  // a handler threw: 500
  uint64_t tls_failures = 0;    // TLS handshakes that failed (not TLS, no common version, bad cert)
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes are matched exactly on method and path. Add routes before or after Start().
  void AddRoute(std::string method, std::string path, Handler handler);
  absl::Status Start();  // binds, listens, starts the worker threads
  void Stop();           // idempotent; closes every connection, joins the threads
  int port() const;
  std::string address() const;

  ServerStats stats() const;
  // The counters above in Prometheus text format (writ_http_*), for a /metrics handler.
  std::string MetricsText() const;

  // Parses `bytes` as one request with the parser and limits a connection uses, and answers it as a
  // connection would (Host check, routing, handler): the serialized response. No socket is
  // involved; bytes missing at the end are answered like a client that stopped sending (408). The
  // fuzz target's entry point (tests/fuzz/http_request_fuzz.cc).
  std::string ServeBytes(std::string_view bytes, const std::string& peer = "127.0.0.1:1");
  // Whether connections speak TLS; "https" or "http".
  bool tls() const;
  std::string scheme() const { return tls() ? "https" : "http"; }

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace writ::http
