// In-process HTTP/1.1 receiver on 127.0.0.1 for sink tests: records each request; can answer 500
// or accept-and-hang for the first N requests to exercise retries.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace writ::sinks::testing {

struct HttpRequest {
  std::string request_line;
  std::string headers;
  std::string body;
};

class HttpReceiver {
 public:
  enum class Mode { kOk, kFail500, kHang };
  // port 0 = any free port.
  explicit HttpReceiver(int port = 0, Mode bad_mode = Mode::kOk, int bad_count = 0)
      : bad_mode_(bad_mode), bad_left_(bad_count) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 && ::listen(fd_, 64) == 0;
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~HttpReceiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }
  std::vector<HttpRequest> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  int bad_answered() const { return bad_answered_; }

 private:
  void Loop() {
    std::vector<int> hung;
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      HttpRequest req;
      if (!ReadRequest(c, &req)) {
        ::close(c);
        continue;
      }
      if (bad_left_ > 0) {
        --bad_left_;
        ++bad_answered_;
        if (bad_mode_ == Mode::kHang) {
          hung.push_back(c);  // never answered; closed at the end
          continue;
        }
        const char kResp[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
        (void)!::write(c, kResp, sizeof(kResp) - 1);
        ::close(c);
        continue;
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(req);
      }
      const char kResp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
      (void)!::write(c, kResp, sizeof(kResp) - 1);
      ::close(c);
    }
    for (int c : hung) ::close(c);
  }

  static bool ReadRequest(int c, HttpRequest* req) {
    std::string buf;
    char tmp[65536];
    size_t hdr_end = std::string::npos;
    size_t need = 0;
    for (int i = 0; i < 100000; ++i) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return false;
      const ssize_t n = ::read(c, tmp, sizeof(tmp));
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
      if (hdr_end == std::string::npos) {
        hdr_end = buf.find("\r\n\r\n");
        if (hdr_end == std::string::npos) continue;
        const size_t first = buf.find("\r\n");
        req->request_line = buf.substr(0, first);
        req->headers = buf.substr(first + 2, hdr_end - first - 2);
        const size_t cl = req->headers.find("Content-Length: ");
        need = cl == std::string::npos ? 0 : std::stoul(req->headers.substr(cl + 16));
      }
      if (buf.size() >= hdr_end + 4 + need) {
        req->body = buf.substr(hdr_end + 4, need);
        return true;
      }
    }
    return false;
  }

  int fd_ = -1;
  int port_ = 0;
  bool ok_ = false;
  Mode bad_mode_;
  std::atomic<int> bad_left_;
  std::atomic<int> bad_answered_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::thread thread_;
};

// A port on 127.0.0.1 that nothing listens on right now.
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace writ::sinks::testing
