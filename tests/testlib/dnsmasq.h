// Debian's dnsmasq as the upstream resolver of a test: on a free 127.0.0.1 port, serving only the
// records the test names (--host-record, --cname), no /etc/hosts, no upstream of its own, with a
// short TTL for its records. Used by the stub's unit tests and by the DNS egress end-to-end tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dns/message.h"

namespace writ::testlib {

inline bool OnPath(const char* prog) {
  return system(absl::StrCat("command -v ", prog, " >/dev/null 2>&1").c_str()) == 0;
}

inline uint16_t FreeUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t l = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  close(fd);
  return ntohs(a.sin_port);
}

// One UDP or TCP exchange with 127.0.0.1:port; empty on timeout (2 s).
inline std::vector<uint8_t> AskDns(uint16_t port, const std::vector<uint8_t>& q, bool tcp) {
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<uint8_t> out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    if (tcp) {
      std::vector<uint8_t> framed{static_cast<uint8_t>(q.size() >> 8),
                                  static_cast<uint8_t>(q.size())};
      framed.insert(framed.end(), q.begin(), q.end());
      send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
      uint8_t len[2];
      if (recv(fd, len, 2, MSG_WAITALL) == 2) {
        out.resize(len[0] << 8 | len[1]);
        if (recv(fd, out.data(), out.size(), MSG_WAITALL) != static_cast<ssize_t>(out.size()))
          out.clear();
      }
    } else {
      send(fd, q.data(), q.size(), 0);
      out.resize(dns::kMaxMessage);
      ssize_t n = recv(fd, out.data(), out.size(), 0);
      out.resize(n > 0 ? n : 0);
    }
  }
  close(fd);
  return out;
}

class Dnsmasq {
 public:
  Dnsmasq() = default;
  ~Dnsmasq() { Stop(); }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  // `records`: dnsmasq options (--host-record=..., --cname=...); `probe`: a name it serves (A),
  // asked until it answers. A free port can be taken between FreeUdpPort and dnsmasq's bind (ctest
  // runs tests in parallel): dnsmasq then exits at once, and another port is tried, at most three
  // times. False when it never answered.
  bool Start(const std::vector<std::string>& records, const std::string& probe, int ttl = 2) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (StartOnce(records, probe, ttl)) return true;
    }
    return false;
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  uint16_t port() const { return port_; }

 private:
  bool StartOnce(const std::vector<std::string>& records, const std::string& probe, int ttl) {
    port_ = FreeUdpPort();
    std::vector<std::string> args = {"dnsmasq",
                                     "--keep-in-foreground",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--bind-interfaces",
                                     "--listen-address=127.0.0.1",
                                     absl::StrCat("--port=", port_),
                                     "--pid-file=",
                                     absl::StrCat("--local-ttl=", ttl),
                                     "--log-facility=/dev/null"};
    args.insert(args.end(), records.begin(), records.end());
    if (geteuid() == 0) args.push_back("--user=root");
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("dnsmasq", argv.data());
      _exit(127);
    }
    // Ready when it answers (bounded: 50 tries over about 5 s).
    auto q = dns::BuildQuery(1, probe, dns::kTypeA);
    for (int i = 0; q.ok() && i < 50; ++i) {
      if (!AskDns(port_, *q, false).empty()) return true;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited: its port was taken
        pid_ = -1;
        return false;
      }
      usleep(100 * 1000);
    }
    Stop();
    return false;
  }

  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace writ::testlib
