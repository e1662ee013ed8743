// A loopback TCP listener on an ephemeral port, for tests that connect (the kernel completes
// handshakes from the backlog, so nothing needs to accept).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace writ::testlib {

struct Listener {
  int fd = -1;
  uint16_t port = 0;
  // On the loopback address of `family`, or on `ip` (any 127.0.0.0/8 address is local), at `want`
  // (0: a free port). port stays 0 when the bind failed.
  explicit Listener(int family, const char* ip = nullptr, uint16_t want = 0) {
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(want);
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (ip) inet_pton(AF_INET, ip, &a->sin_addr);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(want);
      a->sin6_addr = in6addr_loopback;
      if (ip) inet_pton(AF_INET6, ip, &a->sin6_addr);
      len = sizeof(*a);
    }
    if (want != 0) {
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 64) != 0) return;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  ~Listener() { close(fd); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
};

// A unix stream socket listening at a path, or at an abstract name ("@name"). The kernel queues a
// connect in the backlog without an accept: Pending() takes one if there is one (non-blocking), so
// a test can tell whether anything connected.
struct UnixListener {
  int fd = -1;
  std::string name;
  explicit UnixListener(const std::string& n) : name(n) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    socklen_t len = sizeof(un);
    if (!n.empty() && n[0] == '@') {
      std::memcpy(un.sun_path + 1, n.data() + 1, n.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n.size());
    } else {
      std::strncpy(un.sun_path, n.c_str(), sizeof(un.sun_path) - 1);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&un), len) != 0 || listen(fd, 64) != 0) {
      close(fd);
      fd = -1;
    }
  }
  bool Pending() {
    int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return false;
    close(c);
    return true;
  }
  ~UnixListener() {
    if (fd >= 0) close(fd);
    if (!name.empty() && name[0] == '/') unlink(name.c_str());
  }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;
};

// A UDP socket bound to loopback on an ephemeral port: Received() counts the datagrams that
// arrived.
struct UdpReceiver {
  int fd = -1;
  uint16_t port = 0;
  explicit UdpReceiver(int family) {
    fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;  // v4-mapped senders reach a dual-stack socket
      len = sizeof(*a);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  int Received() {
    int n = 0;
    char b[64];
    while (recv(fd, b, sizeof(b), 0) >= 0) n++;
    return n;
  }
  ~UdpReceiver() { close(fd); }
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;
};

}  // namespace writ::testlib
