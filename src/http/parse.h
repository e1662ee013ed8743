// What writd parses itself around HTTP, after Boost.Beast has parsed the message: form bodies
// (introspection and revocation requests), %-escapes in paths, the Host header. Pure functions; the
// fuzz target tests/fuzz/http_request_fuzz.cc reaches them through Server::ServeBytes.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace writ::http {

// application/x-www-form-urlencoded → map (last value wins). Bad %-escapes are an error.
absl::StatusOr<std::map<std::string, std::string>> ParseForm(std::string_view body);
absl::StatusOr<std::string> UrlDecode(std::string_view s, bool plus_is_space = true);
std::string UrlEncode(std::string_view s);

// Whether a Host header value names this server: `name[:port]` or `[v6]:port`, the name one of
// `names` (lower-case), the port (if given) `port`. Exposed for tests.
bool HostAllowed(std::string_view host, const std::vector<std::string>& names, int port);

}  // namespace writ::http
