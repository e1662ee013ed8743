// Minimal HTTP/1.1 client (plain http:// only) for outbound calls to local or trusted-network services:
// Vault lease revocation and webhook delivery. One request per connection, bounded response size, a
// deadline on the whole exchange. No TLS: put a TLS-terminating proxy in front (see docs/credentials.md).
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
  std::string url;  // http://host:port/path?query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration timeout = absl::Seconds(5);
  size_t max_response_bytes = 1 << 20;
};

absl::StatusOr<ClientResponse> Fetch(const ClientRequest& req);

}  // namespace writ::http
