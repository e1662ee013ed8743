// writ_http: a small HTTP/1.1 server for loopback-only endpoints (token introspection, JWKS, /metrics).
// One acceptor thread hands connections to a few workers through a bounded queue; one request per
// connection (Connection: close). Requests are bounded (64 KiB by default → 413) and every read/write has
// a deadline, so a slow or hostile local client cannot pin a worker.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace writ::http {

struct Request {
  std::string method;
  std::string path;   // without the query
  std::string query;  // raw, after '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string peer;  // "127.0.0.1:port"

  // First header with this (case-insensitive) name, or empty.
  std::string Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port; host must be a loopback address
  int workers = 2;
  size_t max_request_bytes = 64 * 1024;
  size_t max_queued_connections = 64;
  absl::Duration io_timeout = absl::Seconds(5);
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();

  // Routes are matched exactly on method and path. Add routes before or after Start().
  void AddRoute(std::string method, std::string path, Handler handler);
  absl::Status Start();  // binds, listens, spawns threads
  void Stop();           // idempotent; joins threads
  int port() const { return port_; }
  std::string address() const;

 private:
  explicit Server(ServerOptions o) : options_(std::move(o)) {}
  void AcceptLoop();
  void WorkerLoop();
  void Serve(int fd, const std::string& peer);
  Handler Lookup(const std::string& method, const std::string& path, bool* path_known) const;

  const ServerOptions options_;
  std::string host_;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> workers_;

  mutable absl::Mutex routes_mu_;
  std::map<std::pair<std::string, std::string>, Handler> routes_ ABSL_GUARDED_BY(routes_mu_);

  absl::Mutex queue_mu_;
  std::deque<std::pair<int, std::string>> queue_ ABSL_GUARDED_BY(queue_mu_);
};

// application/x-www-form-urlencoded → map (last value wins). Bad %-escapes are an error.
absl::StatusOr<std::map<std::string, std::string>> ParseForm(std::string_view body);
absl::StatusOr<std::string> UrlDecode(std::string_view s, bool plus_is_space = true);
std::string UrlEncode(std::string_view s);
std::string_view StatusText(int status);

}  // namespace writ::http
