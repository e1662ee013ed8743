#include "http/client.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "net/tls_conn.h"

namespace writ::http {
namespace {

struct Url {
  bool tls = false;
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

absl::StatusOr<Url> ParseUrl(const std::string& url) {
  Url u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    u.port = "443";
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("url '", url, "': only http:// and https:// are supported"));
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.target = rest.substr(slash);
  if (authority.find('@') != std::string::npos) {
    return absl::InvalidArgumentError("url: userinfo is not supported (it would leak credentials in logs)");
  }
  size_t colon = authority.rfind(':');
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("url '", url, "': bad IPv6 host"));
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':') u.port = authority.substr(close + 2);
  } else if (colon != std::string::npos) {
    u.host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
  } else {
    u.host = authority;
  }
  if (u.host.empty()) return absl::InvalidArgumentError(absl::StrCat("url '", url, "': empty host"));
  return u;
}

absl::StatusOr<std::string> DecodeChunked(std::string_view in) {
  std::string out;
  size_t pos = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    size_t e = in.find("\r\n", pos);
    if (e == std::string_view::npos) return absl::DataLossError("chunked: truncated size line");
    std::string size_hex(in.substr(pos, e - pos));
    size_t semi = size_hex.find(';');
    if (semi != std::string::npos) size_hex.resize(semi);
    size_t n = 0;
    if (!absl::SimpleHexAtoi(size_hex, &n)) return absl::DataLossError("chunked: bad size");
    pos = e + 2;
    if (n == 0) return out;
    if (pos + n > in.size()) return absl::DataLossError("chunked: truncated chunk");
    out.append(in.substr(pos, n));
    pos += n + 2;
  }
  return absl::DataLossError("chunked: too many chunks");
}

}  // namespace

absl::StatusOr<ClientResponse> Fetch(const ClientRequest& req) {
  auto url = ParseUrl(req.url);
  if (!url.ok()) return url.status();
  int port = 0;
  if (!absl::SimpleAtoi(url->port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("url '", req.url, "': bad port"));
  }
  const absl::Time deadline = absl::Now() + req.timeout;
  net::TlsOptions tls;
  tls.enabled = url->tls;
  tls.ca_file = req.ca_file;
  net::Conn conn;
  if (absl::Status st = conn.Connect(url->host, port, tls, req.timeout); !st.ok()) {
    // "127.0.0.1:1: connect: Connection refused", "TLS handshake with host: certificate verify
    // failed: ..."; the net::Failure payload stays for callers that count by cause.
    return st;
  }
  std::string msg = absl::StrCat(req.method, " ", url->target, " HTTP/1.1\r\nHost: ", url->host, ":", url->port,
                                 "\r\nConnection: close\r\nContent-Length: ", req.body.size(), "\r\n");
  for (const auto& [k, v] : req.headers) absl::StrAppend(&msg, k, ": ", v, "\r\n");
  absl::StrAppend(&msg, "\r\n", req.body);
  // A server may answer early (413) and stop reading; its reply is still worth reading.
  const bool send_incomplete = !conn.WriteAll(msg, deadline).ok();
  std::string buf;
  for (;;) {
    if (buf.size() > req.max_response_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat("response from ", req.url, " exceeds ",
                                                       req.max_response_bytes, " bytes"));
    }
    absl::StatusOr<size_t> n = conn.ReadSome(&buf, req.max_response_bytes + 1 - buf.size(), deadline);
    if (n.ok() && *n > 0) continue;
    if (n.ok()) break;
    if (net::FailureOf(n.status()) == net::Failure::kTimeout) {
      return absl::DeadlineExceededError(absl::StrCat("no complete response from ", req.url));
    }
    if (send_incomplete && !buf.empty()) break;  // the reset that follows an early answer
    return absl::UnavailableError(absl::StrCat("recv from ", req.url, ": ", n.status().message()));
  }
  conn.Close();
  size_t he = buf.find("\r\n\r\n");
  if (he == std::string::npos && send_incomplete) {
    return absl::DeadlineExceededError(absl::StrCat("send to ", req.url, " did not complete"));
  }
  if (he == std::string::npos || buf.rfind("HTTP/1.", 0) != 0 || buf.size() < 12) {
    return absl::DataLossError(absl::StrCat("malformed response from ", req.url));
  }
  ClientResponse resp;
  if (!absl::SimpleAtoi(buf.substr(9, 3), &resp.status)) {
    return absl::DataLossError(absl::StrCat("malformed status line from ", req.url));
  }
  std::string_view head(buf.data(), he);
  size_t pos = head.find("\r\n");
  bool chunked = false;
  while (pos != std::string_view::npos && pos < head.size()) {
    pos += 2;
    size_t e = head.find("\r\n", pos);
    std::string_view h = head.substr(pos, e == std::string_view::npos ? std::string_view::npos : e - pos);
    size_t colon = h.find(':');
    if (colon != std::string_view::npos) {
      std::string name = absl::AsciiStrToLower(absl::string_view(h.data(), colon));
      std::string value(absl::StripAsciiWhitespace(absl::string_view(h.data() + colon + 1, h.size() - colon - 1)));
      if (name == "transfer-encoding" && absl::StrContains(absl::AsciiStrToLower(value), "chunked")) chunked = true;
      resp.headers.emplace_back(std::move(name), std::move(value));
    }
    pos = e;
  }
  std::string_view body(buf.data() + he + 4, buf.size() - he - 4);
  if (chunked) {
    auto d = DecodeChunked(body);
    if (!d.ok()) return d.status();
    resp.body = std::move(*d);
  } else {
    resp.body = std::string(body);
  }
  return resp;
}

}  // namespace writ::http
