#include "testlib/nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace writ::testlib {
namespace {

constexpr char kNatsServer[] = "/usr/sbin/nats-server";

std::string FindNatsServer() {
  if (::access(kNatsServer, X_OK) == 0) return kNatsServer;
  return "";
}

}  // namespace

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

int HttpGet(int port, const std::string& path, std::string* body) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string req =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  std::string resp;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  int code = -1;
  if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() > 12) code = std::atoi(resp.c_str() + 9);
  if (body != nullptr) {
    const size_t p = resp.find("\r\n\r\n");
    *body = p == std::string::npos ? "" : resp.substr(p + 4);
  }
  return code;
}

std::string NatsCluster::SkipReason() {
  if (FindNatsServer().empty()) {
    return absl::StrCat(kNatsServer, " not found (apt-get install nats-server; scripts/setup.sh)");
  }
  return "";
}

NatsCluster::~NatsCluster() {
  (void)KillAll();
  if (!dir_.empty() && std::getenv("WRIT_KEEP_NATS") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status NatsCluster::Start(int nodes, const std::string& extra_config) {
  if (nodes != 1 && nodes != 3) return absl::InvalidArgumentError("1 or 3 nodes");
  if (std::string why = SkipReason(); !why.empty()) return absl::FailedPreconditionError(why);
  char tmpl[] = "/tmp/writ-nats-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp");
  dir_ = tmpl;
  nodes_.resize(nodes);
  for (auto& n : nodes_) {
    n.port = FreeLoopbackPort();
    n.cluster_port = FreeLoopbackPort();
    n.http_port = FreeLoopbackPort();
    if (n.port < 0 || n.cluster_port < 0 || n.http_port < 0) {
      return absl::InternalError("no free loopback port");
    }
  }
  std::vector<std::string> routes;
  for (const auto& n : nodes_)
    routes.push_back(absl::StrCat("nats-route://127.0.0.1:", n.cluster_port));
  for (int i = 0; i < nodes; ++i) {
    Node& n = nodes_[i];
    const std::string name = absl::StrCat("node", i + 1);
    n.conf = absl::StrCat(dir_, "/", name, ".conf");
    n.log = absl::StrCat(dir_, "/", name, ".log");
    std::ostringstream c;
    c << "server_name: " << name << "\n"
      << "listen: 127.0.0.1:" << n.port << "\n"
      << "http: 127.0.0.1:" << n.http_port << "\n"
      << "jetstream {\n  store_dir: \"" << dir_ << "/" << name << "\"\n"
      << "  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n";
    if (nodes > 1) {
      c << "cluster {\n  name: writ-test\n  listen: 127.0.0.1:" << n.cluster_port << "\n"
        << "  routes: [\n    " << absl::StrJoin(routes, "\n    ") << "\n  ]\n}\n";
    }
    n.base = c.str();
    std::ofstream(n.conf) << n.base << extra_config << "\n";
  }
  for (auto& n : nodes_) {
    if (auto st = Spawn(n); !st.ok()) return st;
  }
  return WaitHealthy();
}

absl::Status NatsCluster::Spawn(Node& n) {
  const std::string bin = FindNatsServer();
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork");
  if (pid == 0) {
    // A test that dies (crash, timeout kill) takes its servers with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(n.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    ::execl(bin.c_str(), bin.c_str(), "-c", n.conf.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  n.pid = pid;
  return absl::OkStatus();
}

bool NatsCluster::Healthy(const Node& n) const {
  return n.pid > 0 && HttpGet(n.http_port, "/healthz") == 200;
}

absl::Status NatsCluster::WaitHealthy(absl::Duration max) {
  const absl::Time deadline = absl::Now() + max;
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const Node& n = nodes_[i];
      if (n.pid <= 0) continue;
      int status = 0;
      if (::waitpid(n.pid, &status, WNOHANG) == n.pid) {
        nodes_[i].pid = -1;
        return absl::InternalError(
            absl::StrCat("nats-server node", i + 1, " exited: ", Log(static_cast<int>(i))));
      }
      if (!Healthy(n)) all = false;
    }
    if (all) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "nats cluster not healthy after ", absl::FormatDuration(max), "; node1 log: ", Log(0)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status NatsCluster::Kill(int node) {
  Node& n = nodes_.at(node);
  if (n.pid <= 0) return absl::OkStatus();
  ::kill(n.pid, SIGKILL);
  int status = 0;
  ::waitpid(n.pid, &status, 0);
  n.pid = -1;
  return absl::OkStatus();
}

absl::Status NatsCluster::Restart(int node) {
  Node& n = nodes_.at(node);
  if (n.pid > 0) return absl::OkStatus();
  return Spawn(n);
}

absl::Status NatsCluster::Reconfigure(const std::string& extra_config) {
  for (auto& n : nodes_) {
    std::ofstream(n.conf) << n.base << extra_config << "\n";
    if (n.pid > 0 && ::kill(n.pid, SIGHUP) != 0) return absl::InternalError("SIGHUP nats-server");
  }
  return absl::OkStatus();
}

absl::Status NatsCluster::KillAll() {
  for (int i = 0; i < size(); ++i) {
    if (auto st = Kill(i); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status NatsCluster::RestartAll() {
  for (int i = 0; i < size(); ++i) {
    if (auto st = Restart(i); !st.ok()) return st;
  }
  return WaitHealthy();
}

std::string NatsCluster::url(int node) const {
  return absl::StrCat("nats://127.0.0.1:", nodes_.at(node).port);
}

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> u;
  for (int i = 0; i < size(); ++i) u.push_back(url(i));
  return u;
}

int NatsCluster::NodeServing(const std::string& connection_name) const {
  for (int i = 0; i < size(); ++i) {
    std::string body;
    if (nodes_[i].pid > 0 && HttpGet(nodes_[i].http_port, "/connz", &body) == 200 &&
        body.find(absl::StrCat("\"name\": \"", connection_name, "\"")) != std::string::npos) {
      return i;
    }
  }
  return -1;
}

std::string NatsCluster::Log(int node) const {
  if (node < 0 || node >= size()) return "";
  std::ifstream f(nodes_[node].log);
  std::stringstream s;
  s << f.rdbuf();
  std::string t = s.str();
  return t.size() > 4000 ? t.substr(t.size() - 4000) : t;
}

}  // namespace writ::testlib
