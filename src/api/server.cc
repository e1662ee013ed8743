#include "api/server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::api {

static constexpr int kMaxConnections = 64;

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& path, Handler handler,
                                                      int group) {
  ASSIGN_OR_RETURN(struct sockaddr_un addr, UnixSocketAddress(path));
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  ::unlink(path.c_str());
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (rc != 0) return ErrnoStatus(errno, absl::StrCat("bind ", path));
  if (group >= 0) {
    // Group members reach the socket; until this chown/chmod it is 0600 (umask above): no window.
    if (::chown(path.c_str(), 0, static_cast<gid_t>(group)) != 0 ||
        ::chmod(path.c_str(), 0660) != 0) {
      int err = errno;
      ::unlink(path.c_str());
      return ErrnoStatus(err, absl::StrCat("give ", path, " to group ", group));
    }
  }
  if (::listen(fd.get(), 64) != 0) return ErrnoStatus(errno, absl::StrCat("listen ", path));
  std::unique_ptr<Server> s(new Server(path, std::move(fd), std::move(handler)));
  s->acceptor_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

Server::Server(std::string path, Fd listen_fd, Handler handler)
    : path_(std::move(path)), listen_fd_(std::move(listen_fd)), handler_(std::move(handler)) {}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listen_fd_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Conn> conns;
  {
    absl::MutexLock lock(&mu_);
    // A finished connection's fd is closed (and its number possibly reused by a sink's socket):
    // skip it.
    for (Conn& c : conns_) {
      if (!c.done) ::shutdown(c.fd, SHUT_RDWR);
    }
    conns.swap(conns_);
  }
  for (Conn& c : conns) {
    if (c.thread.joinable()) c.thread.join();
  }
  ::unlink(path_.c_str());
}

void Server::AcceptLoop() {
  while (!stopping_.load()) {
    struct pollfd pfd = {listen_fd_.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, 200);
    if (r <= 0) continue;
    int cfd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    absl::MutexLock lock(&mu_);
    // Reap finished connections, then refuse floods: a bounded number of concurrent clients.
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (it->done) {
        it->thread.join();
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
    if (conns_.size() >= kMaxConnections) {
      rejected_++;
      ::close(cfd);
      continue;
    }
    conns_.push_back(Conn{cfd, {}, false});
    Conn* c = &conns_.back();
    c->thread = std::thread([this, c] {
      Serve(c->fd);
      // Closed under mu_, with done: Stop() shuts down only fds still open, never a closed number
      // another thread's socket now has.
      absl::MutexLock l(&mu_);
      ::close(c->fd);
      c->done = true;
    });
  }
}

void Server::Serve(int fd) {
  auto identified = IdentifyPeer(fd);
  if (!identified.ok()) {
    // Answer the first request with the reason, so the client sees why, then drop it.
    unidentified_++;
    rejected_++;
    v1::Request req;
    if (ReadFrame(fd, &req, absl::Seconds(2)).ok()) {
      v1::Response resp;
      resp.set_code(static_cast<int>(absl::StatusCode::kPermissionDenied));
      resp.set_error(std::string(identified.status().message()));
      (void)WriteFrame(fd, resp);
    }
    return;
  }
  const Peer& peer = *identified;
  while (!stopping_.load()) {
    v1::Request req;
    absl::Status st = ReadFrame(fd, &req, absl::ZeroDuration());
    if (absl::IsNotFound(st)) return;  // client closed
    if (!st.ok()) {
      // Oversized, truncated or malformed: answer once with the reason and drop the connection.
      rejected_++;
      v1::Response resp;
      resp.set_code(static_cast<int>(st.code()));
      resp.set_error(std::string(st.message()));
      (void)WriteFrame(fd, resp);
      return;
    }
    handler_(peer, fd, req);
  }
}

}  // namespace writ::api
