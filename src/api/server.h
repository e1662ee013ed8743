// Control-socket server: accepts on a unix socket, reads framed Requests, hands each with the caller's
// SO_PEERCRED to the handler. One thread per connection (control traffic is a handful of CLI calls and
// tail streams). Stop() shuts every connection down and joins.
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
#include "util/fd.h"
#include "writ/v1/api.pb.h"

namespace writ::api {

class Server {
 public:
  // The handler answers one request on fd. It may write several frames (tail) and returns when done.
  using Handler = std::function<void(const PeerCred& peer, int fd, const v1::Request& req)>;

  // Binds path (replacing a stale socket), mode 0600: only root reaches writd.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& path, Handler handler);
  ~Server();
  void Stop();
  uint64_t rejected() const { return rejected_.load(); }

 private:
  Server(std::string path, Fd listen_fd, Handler handler);
  void AcceptLoop();
  void Serve(int fd);

  std::string path_;
  Fd listen_fd_;
  Handler handler_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> rejected_{0};
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
