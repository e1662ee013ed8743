// rsyslogd on loopback for end-to-end tests, with its own config, pid file, work dir and output
// file (never the system's), over plain TCP or TLS (RFC 5425, rsyslog's OpenSSL stream driver); and
// a throwaway PKI made with the openssl CLI, as an operator would. Both stop/clean up on
// destruction.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace writ::testlib {

namespace fs = std::filesystem;
constexpr char kRsyslogd[] = "/usr/sbin/rsyslogd";

// A server certificate for rsyslog's TLS listener (PEM paths).
struct ServerTls {
  std::string ca, cert, key;
};

class Rsyslog {
 public:
  // With `tls`, the listener speaks TLS (RFC 5425) through rsyslog's OpenSSL stream driver.
  Rsyslog(const fs::path& dir, int port, const ServerTls* tls = nullptr) : dir_(dir), port_(port) {
    fs::create_directories(dir / "work");
    Configure(tls);
  }
  ~Rsyslog() { Stop(); }

  // Rewrites the config; takes effect at the next Start().
  void Configure(const ServerTls* tls) {
    std::ofstream conf(dir_ / "rsyslog.conf");
    conf << "global(workDirectory=\"" << (dir_ / "work").string() << "\" maxMessageSize=\"64k\"";
    if (tls) {
      conf << " defaultNetstreamDriver=\"ossl\" defaultNetstreamDriverCAFile=\"" << tls->ca
           << "\" defaultNetstreamDriverCertFile=\"" << tls->cert
           << "\" defaultNetstreamDriverKeyFile=\"" << tls->key << "\"";
    }
    conf << ")\n"
         << "main_queue(queue.type=\"Direct\")\n";  // no in-memory queue to lose on shutdown
    if (tls) {
      // Mode 1 = TLS only; anon = rsyslog does not ask the client (writd) for a certificate.
      conf << "module(load=\"imtcp\" streamDriver.name=\"ossl\" streamDriver.mode=\"1\" "
              "streamDriver.authMode=\"anon\")\n";
    } else {
      conf << "module(load=\"imtcp\")\n";
    }
    conf << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << port_ << "\")\n"
         << "template(name=\"msgonly\" type=\"string\" string=\"%msg%\\n\")\n"
         << "action(type=\"omfile\" file=\"" << out().string()
         << "\" template=\"msgonly\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n";
  }
  fs::path out() const { return dir_ / "out.log"; }

  bool Start() {
    const std::string conf = (dir_ / "rsyslog.conf").string();
    const std::string pid = (dir_ / "rsyslogd.pid").string();
    const std::string log = (dir_ / "rsyslogd.log").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execl(kRsyslogd, kRsyslogd, "-n", "-f", conf.c_str(), "-i", pid.c_str(), nullptr);
      ::_exit(127);
    }
    // Ready when the port accepts (bounded).
    for (int i = 0; i < 200; ++i) {
      if (Accepts()) return true;
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      absl::SleepFor(absl::Milliseconds(25));
    }
    return false;
  }
  bool running() const { return pid_ > 0; }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st;
    for (int i = 0; i < 200 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(25));
    }
    if (::waitpid(pid_, &st, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
    }
    pid_ = -1;
  }

 private:
  bool Accepts() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
  }

  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
};

constexpr char kOpenssl[] = "/usr/bin/openssl";

inline bool Sh(const std::string& cmd, const fs::path& log) {
  const std::string full = absl::StrCat("timeout 60 ", cmd, " >>", log.string(), " 2>&1");
  return std::system(full.c_str()) == 0;
}

// A throwaway CA and server certificates made with the openssl CLI, as an operator would.
class OpensslPki {
 public:
  explicit OpensslPki(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  fs::path log() const { return dir_ / "openssl.log"; }

  // dir/<name>-ca.crt, dir/<name>-ca.key
  bool MakeCa(const std::string& name) {
    const std::string base = (dir_ / (name + "-ca")).string();
    return Sh(
        absl::StrCat(kOpenssl, " req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes",
                     " -keyout ", base, ".key -out ", base, ".crt -days 2 -subj '/CN=", name,
                     " e2e CA' -addext basicConstraints=critical,CA:TRUE",
                     " -addext keyUsage=critical,keyCertSign,cRLSign"),
        log());
  }
  // A server certificate for `san` (e.g. "IP:127.0.0.1") signed by CA `ca`.
  bool Issue(const std::string& ca, const std::string& name, const std::string& san,
             ServerTls* out) {
    const std::string base = (dir_ / name).string();
    const std::string cab = (dir_ / (ca + "-ca")).string();
    std::ofstream(base + ".ext") << "subjectAltName=" << san
                                 << "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    out->ca = cab + ".crt";
    out->cert = base + ".crt";
    out->key = base + ".key";
    return Sh(absl::StrCat(kOpenssl,
                           " req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ", base,
                           ".key -out ", base, ".csr -subj /CN=", name),
              log()) &&
           Sh(absl::StrCat(kOpenssl, " x509 -req -in ", base, ".csr -CA ", cab, ".crt -CAkey ", cab,
                           ".key -CAcreateserial -days 2 -out ", base, ".crt -extfile ", base,
                           ".ext"),
              log());
  }

 private:
  fs::path dir_;
};

inline bool HaveTlsTools() {
  return ::access(kRsyslogd, X_OK) == 0 && ::access(kOpenssl, X_OK) == 0 &&
         (fs::exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so") ||
          fs::exists("/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_ossl.so") ||
          fs::exists("/usr/lib/rsyslog/lmnsd_ossl.so"));
}
constexpr char kNoTls[] =
    "rsyslogd, its OpenSSL driver or openssl missing (apt-get install rsyslog rsyslog-openssl "
    "openssl)";

}  // namespace writ::testlib
