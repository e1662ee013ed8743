// Control-socket server: accepts on a unix socket, identifies the peer once (api/peer.h:
// SO_PEERCRED, SO_PEERGROUPS, its cgroup through its pidfd), reads framed Requests and hands each
// with that identity to the handler. A peer that cannot be identified is refused. One thread per
// connection (control traffic is a handful of CLI calls and tail streams), at most kMaxConnections.
// Stop() shuts every connection down and joins.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/framing.h"
#include "api/peer.h"
#include "util/fd.h"
#include "writ/v1/api.pb.h"

namespace writ::api {

class Server {
 public:
  // The handler answers one request on fd. It may write several frames (tail) and returns when
  // done.
  using Handler = std::function<void(const Peer& peer, int fd, const v1::Request& req)>;

  // Binds path (replacing a stale socket). With `group` >= 0 the socket is 0660 root:group (members
  // may connect; what they may do is the handler's decision), else 0600: only root reaches writd.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& path, Handler handler,
                                                       int group = -1);
  ~Server();
  void Stop();
  // Connections refused: unidentifiable peers, floods, malformed frames.
  uint64_t rejected() const { return rejected_.load(); }
  uint64_t unidentified() const { return unidentified_.load(); }

 private:
  Server(std::string path, Fd listen_fd, Handler handler);
  void AcceptLoop();
  void Serve(int fd);

  std::string path_;
  Fd listen_fd_;
  Handler handler_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> unidentified_{0};
  absl::Mutex mu_;
  struct Conn {
    int fd;
    std::thread thread;
    bool done = false;
  };
  std::list<Conn> conns_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

}  // namespace writ::api
