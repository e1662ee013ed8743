// Minimal HTTP/1.1 client for outbound calls: Vault lease revocation and revocation webhooks. One
// request per connection, bounded response size, a deadline on the whole exchange. https:// verifies
// the server certificate (net/tls_conn.h) against `ca_file` or the system CA store, and its name
// against the URL's host; there is no switch to turn verification off.
#pragma once

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
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http(s)://host:port/path?query
  std::string ca_file;  // https: PEM CA bundle to verify the server against; empty = system CA store
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(5);
  size_t max_response_bytes = 1 << 20;
};

absl::StatusOr<ClientResponse> Fetch(const ClientRequest& req);

}  // namespace writ::http
