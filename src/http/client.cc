#include "http/client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace writ::http {
namespace {

struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";
};

absl::StatusOr<Url> ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("url '", url, "': only http:// is supported"));
  }
  Url u;
  std::string rest = url.substr(kScheme.size());
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

int Remaining(absl::Time deadline) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
}

absl::StatusOr<int> Connect(const Url& u, absl::Time deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("resolve ", u.host, ": ", gai_strerror(rc)));
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = absl::UnavailableError(absl::StrCat("connect ", u.host, ":", u.port, ": ", strerror(errno)));
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    if (::poll(&p, 1, Remaining(deadline)) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
      last = absl::UnavailableError(
          absl::StrCat("connect ", u.host, ":", u.port, ": ", err ? strerror(err) : "timeout"));
      ::close(fd);
      continue;
    }
    freeaddrinfo(res);
    return fd;
  }
  freeaddrinfo(res);
  return last;
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
  absl::Time deadline = absl::Now() + req.timeout;
  auto fd_or = Connect(*url, deadline);
  if (!fd_or.ok()) return fd_or.status();
  int fd = *fd_or;
  std::string msg = absl::StrCat(req.method, " ", url->target, " HTTP/1.1\r\nHost: ", url->host, ":", url->port,
                                 "\r\nConnection: close\r\nContent-Length: ", req.body.size(), "\r\n");
  for (const auto& [k, v] : req.headers) absl::StrAppend(&msg, k, ": ", v, "\r\n");
  absl::StrAppend(&msg, "\r\n", req.body);
  size_t off = 0;
  while (off < msg.size()) {
    ssize_t n = ::send(fd, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, Remaining(deadline)) != 1) break;
    } else {
      break;
    }
  }
  // A server may answer early (413) and stop reading; its reply is still worth reading.
  bool send_incomplete = off < msg.size();
  std::string buf;
  char chunk[8192];
  for (;;) {
    if (buf.size() > req.max_response_bytes) {
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("response from ", req.url, " exceeds ",
                                                       req.max_response_bytes, " bytes"));
    }
    ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, Remaining(deadline)) == 1) continue;
      ::close(fd);
      return absl::DeadlineExceededError(absl::StrCat("no complete response from ", req.url));
    }
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("recv from ", req.url, ": ", strerror(errno)));
  }
  ::close(fd);
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
