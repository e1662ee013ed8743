// writd's outbound HTTP (Vault lease revocation, revocation webhooks, the HTTP and HEC sinks), on
// libcurl. http:// and https:// only; redirects are not followed. https:// always verifies the
// server certificate, against `ca_file` or the system CA store, and its name against the URL's host
// (an IP literal needs an IP SAN); there is no switch to turn verification off. HTTP/2 when the
// server offers it (ALPN), HTTP/1.1 otherwise. Proxies: libcurl's environment variables
// (https_proxy, HTTPS_PROXY, http_proxy — lower-case only —, ALL_PROXY, NO_PROXY) in writd's
// environment; a loopback destination never goes through a proxy. Every failure carries a
// net::Failure kind (net/tls_conn.h) so callers count failures by cause.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace writ::http {

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  int http_version = 0;  // 11 or 20
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http(s)://host:port/path?query
  std::string
      ca_file;       // https: PEM CA bundle to verify the server against; empty = system CA store
  std::string cert;  // https: client certificate chain (PEM) for mutual TLS, with key
  std::string key;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(5);  // the whole exchange, connecting included
  size_t max_response_bytes = 1 << 20;
};

// A client that keeps its connections (keep-alive, one HTTP/2 connection per origin) between
// requests. Not thread-safe: one thread at a time (a sink's own thread, say).
class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  absl::StatusOr<ClientResponse> Fetch(const ClientRequest& req);

 private:
  struct Handle;
  std::unique_ptr<Handle> h_;
};

// One request on a connection of its own.
absl::StatusOr<ClientResponse> Fetch(const ClientRequest& req);

}  // namespace writ::http
