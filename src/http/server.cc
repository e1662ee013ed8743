#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace writ::http {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::get("http");
    return l ? l : spdlog::stderr_color_mt("http");
  }();
  return logger;
}

// Writes all of `data` or fails at `deadline`.
bool WriteAll(int fd, std::string_view data, absl::Time deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (ms <= 0) return false;
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, ms) <= 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

// Reads what is available, waiting until `deadline`. Returns bytes read, 0 on EOF, -1 on error/timeout.
ssize_t ReadSome(int fd, char* buf, size_t len, absl::Time deadline) {
  for (;;) {
    ssize_t n = ::recv(fd, buf, len, 0);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return -1;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return -1;
  }
}

std::string Serialize(const Response& r) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", std::string(StatusText(r.status)), "\r\n",
                                 "Content-Type: ", r.content_type, "\r\n", "Content-Length: ", r.body.size(),
                                 "\r\n", "Connection: close\r\n", "Cache-Control: no-store\r\n");
  for (const auto& [k, v] : r.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "\r\n", r.body);
  return out;
}

Response Error(int status, std::string_view msg) {
  Response r;
  r.status = status;
  r.body = absl::StrCat(std::string(msg), "\n");
  return r;
}

// After an early error reply the client may still be sending; closing with unread data makes the kernel
// send RST, which can destroy our reply before the client reads it. Half-close and drain a bounded amount.
void DrainBriefly(int fd) {
  ::shutdown(fd, SHUT_WR);
  absl::Time deadline = absl::Now() + absl::Milliseconds(500);
  char sink[16384];
  for (size_t total = 0; total < (1u << 20);) {
    ssize_t n = ReadSome(fd, sink, sizeof(sink), deadline);
    if (n <= 0) return;
    total += static_cast<size_t>(n);
  }
}

bool IsLoopback(const std::string& host, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    *len = sizeof(sockaddr_in);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    *len = sizeof(sockaddr_in6);
    return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
  }
  return false;
}

}  // namespace

std::string Request::Header(std::string_view name) const {
  std::string want = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  for (const auto& [k, v] : headers) {
    if (k == want) return v;
  }
  return "";
}

std::string_view StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

absl::StatusOr<std::string> UrlDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= s.size() || !absl::ascii_isxdigit(s[i + 1]) || !absl::ascii_isxdigit(s[i + 2])) {
        return absl::InvalidArgumentError(absl::StrCat("bad %-escape at offset ", i));
      }
      auto hex = [](char h) { return h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10; };
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(pos, amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      auto k = UrlDecode(pair.substr(0, eq));
      auto v = UrlDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      if (!k.ok()) return k.status();
      if (!v.ok()) return v.status();
      out[*k] = *v;
    }
    pos = amp + 1;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.workers < 1 || options.workers > 64) {
    return absl::InvalidArgumentError(absl::StrCat("http: workers must be 1..64, got ", options.workers));
  }
  std::unique_ptr<Server> s(new Server(std::move(options)));
  const std::string& a = s->options_.address;
  size_t colon = a.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(a.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("http: address '", a, "' is not host:port"));
  }
  s->host_ = a.substr(0, colon);
  s->port_ = port;
  sockaddr_storage ss;
  socklen_t len;
  if (!IsLoopback(s->host_, &ss, &len)) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: address '", a, "' is not a loopback address; this server only serves loopback"));
  }
  return s;
}

Server::~Server() { Stop(); }

std::string Server::address() const { return absl::StrCat(host_, ":", port_); }

void Server::AddRoute(std::string method, std::string path, Handler handler) {
  absl::MutexLock l(&routes_mu_);
  routes_[{std::move(method), std::move(path)}] = std::move(handler);
}

Handler Server::Lookup(const std::string& method, const std::string& path, bool* path_known) const {
  absl::MutexLock l(&routes_mu_);
  *path_known = false;
  for (const auto& [key, h] : routes_) {
    if (key.second != path) continue;
    *path_known = true;
    if (key.first == method) return h;
  }
  return nullptr;
}

absl::Status Server::Start() {
  sockaddr_storage ss;
  socklen_t len;
  IsLoopback(host_, &ss, &len);
  if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port_);
  else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port_);
  listen_fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return absl::InternalError(absl::StrCat("http: socket: ", strerror(errno)));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    ::close(listen_fd_);
    listen_fd_ = -1;
    return absl::UnavailableError(absl::StrCat("http: bind ", options_.address, ": ", strerror(err)));
  }
  ::listen(listen_fd_, 128);
  sockaddr_storage bound;
  socklen_t blen = sizeof(bound);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  if (::pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("http: pipe: ", strerror(errno)));
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  Log()->info("http: listening on {}", address());
  return absl::OkStatus();
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_pipe_[1] >= 0) (void)!::write(wake_pipe_[1], "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  {
    absl::MutexLock l(&queue_mu_);  // wake workers; they see stopping_
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
  absl::MutexLock l(&queue_mu_);
  for (auto& [fd, peer] : queue_) ::close(fd);
  queue_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int& fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  listen_fd_ = -1;
}

void Server::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, 1000) <= 0) continue;
    if (p[1].revents) break;
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    char host[INET6_ADDRSTRLEN] = {0};
    int port = 0;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
      port = ntohs(a->sin_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
      port = ntohs(a->sin6_port);
    }
    absl::MutexLock l(&queue_mu_);
    if (queue_.size() >= options_.max_queued_connections) {
      // Overloaded: answer right away rather than letting connections pile up unbounded.
      WriteAll(fd, Serialize(Error(503, "overloaded")), absl::Now() + absl::Milliseconds(100));
      ::close(fd);
      continue;
    }
    queue_.emplace_back(fd, absl::StrCat(host, ":", port));
  }
}

void Server::WorkerLoop() {
  for (;;) {
    std::pair<int, std::string> item;
    {
      absl::MutexLock l(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) { return stopping_.load() || !queue_.empty(); };
      // Bounded wait so a missed wake-up can at worst delay shutdown by this long.
      queue_mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
      if (stopping_.load()) return;
      if (queue_.empty()) continue;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Serve(item.first, item.second);
    ::close(item.first);
  }
}

void Server::Serve(int fd, const std::string& peer) {
  const absl::Time deadline = absl::Now() + options_.io_timeout;
  const size_t max = options_.max_request_bytes;
  std::string buf;
  size_t header_end = std::string::npos;
  char chunk[8192];
  while (header_end == std::string::npos) {
    if (buf.size() > max) {
      WriteAll(fd, Serialize(Error(413, "request too large")), deadline);
      DrainBriefly(fd);
      return;
    }
    ssize_t n = ReadSome(fd, chunk, sizeof(chunk), deadline);
    if (n < 0) {
      WriteAll(fd, Serialize(Error(408, "request timeout")), absl::Now() + absl::Milliseconds(100));
      return;
    }
    if (n == 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    header_end = buf.find("\r\n\r\n");
  }
  if (header_end > max) {
    WriteAll(fd, Serialize(Error(413, "request too large")), deadline);
    DrainBriefly(fd);
    return;
  }
  Request req;
  req.peer = peer;
  std::string_view head(buf.data(), header_end);
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
    WriteAll(fd, Serialize(Error(400, "malformed request line")), deadline);
    return;
  }
  req.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = target.find('?');
  auto path = UrlDecode(target.substr(0, q), /*plus_is_space=*/false);
  if (!path.ok()) {
    WriteAll(fd, Serialize(Error(400, "malformed path")), deadline);
    return;
  }
  req.path = *path;
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  size_t content_length = 0;
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view h = head.substr(pos, e - pos);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) {
      WriteAll(fd, Serialize(Error(400, "malformed header")), deadline);
      return;
    }
    std::string name = absl::AsciiStrToLower(absl::string_view(h.data(), colon));
    std::string value(absl::StripAsciiWhitespace(absl::string_view(h.data() + colon + 1, h.size() - colon - 1)));
    if (name == "content-length") {
      if (!absl::SimpleAtoi(value, &content_length)) {
        WriteAll(fd, Serialize(Error(400, "bad Content-Length")), deadline);
        return;
      }
    } else if (name == "transfer-encoding") {
      WriteAll(fd, Serialize(Error(411, "chunked bodies are not accepted; send Content-Length")), deadline);
      return;
    }
    req.headers.emplace_back(std::move(name), std::move(value));
    pos = e + 2;
  }
  if (content_length > max || header_end + 4 + content_length > max) {
    WriteAll(fd, Serialize(Error(413, "request too large")), deadline);
    DrainBriefly(fd);
    return;
  }
  req.body = buf.substr(header_end + 4);
  while (req.body.size() < content_length) {
    ssize_t n = ReadSome(fd, chunk, std::min(sizeof(chunk), content_length - req.body.size()), deadline);
    if (n <= 0) {
      WriteAll(fd, Serialize(Error(408, "request timeout")), absl::Now() + absl::Milliseconds(100));
      return;
    }
    req.body.append(chunk, static_cast<size_t>(n));
  }
  req.body.resize(content_length);
  bool path_known = false;
  Handler h = Lookup(req.method, req.path, &path_known);
  Response resp;
  if (h) {
    resp = h(req);
  } else if (path_known) {
    resp = Error(405, "method not allowed");
  } else {
    resp = Error(404, "not found");
  }
  WriteAll(fd, Serialize(resp), deadline);
}

}  // namespace writ::http
