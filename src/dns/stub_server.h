// The stub resolver's sockets: UDP and TCP on one loopback address and port, served by one thread.
// A query is attributed to a task by its peer address through `TaskOf` (phase 2: the kernel
// redirect records the task's cgroup per socket cookie; phase 1: the caller decides, tests map
// every peer to a task), then answered by that task's TaskResolver. A peer no task claims gets
// REFUSED. Pins expire on the server thread (checked at least once a second) and are reported
// through the callbacks, which run on the server thread and must not block. TCP carries one query
// per connection, bounded in size and time; queries are served one at a time, so a slow upstream
// delays the next (upstream_timeout bounds it).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dns/resolver.h"

namespace writ::dns {

// Where a query came from: the peer address the stub's socket saw, and over which transport.
struct QuerySource {
  sockaddr_storage peer{};
  int proto = 0;  // IPPROTO_UDP, IPPROTO_TCP
};

struct StubCallbacks {
  std::function<std::optional<std::string>(const QuerySource&)> task_of;
  // Runs before the reply is sent: the pins of o.pins must be in force when it returns (writd
  // writes them into the kernel here), so the task's connect that follows never races them.
  std::function<void(const std::string& task, const Outcome&, const QuerySource&)> on_query;
  std::function<void(const std::string& task, const std::vector<Pin>&)> on_expired;
};

struct StubCounters {
  uint64_t queries = 0;
  uint64_t refused = 0;    // not allowed, unknown task
  uint64_t malformed = 0;  // from the task
  uint64_t failed = 0;     // upstream, chain, pins
};

class StubServer {
 public:
  StubServer(ResolverConfig config, std::unique_ptr<Upstream> upstream, StubCallbacks cb);
  ~StubServer();
  // Binds `addr` ("127.0.0.1:0" picks a free port) for UDP and TCP and starts the thread. With
  // `addr6` (an IPv6 address, no port) the same port is bound there too.
  absl::Status Start(const std::string& addr, const std::string& addr6 = "");
  void Stop();
  uint16_t port() const { return port_; }

  void AddTask(const std::string& task, NamePolicy policy);
  void RemoveTask(const std::string& task);  // its pins are reported expired
  size_t PinCount(const std::string& task);
  StubCounters counters();

 private:
  void Loop();
  void ServeUdp(int fd);
  void ServeTcp(int fd);
  std::vector<uint8_t> Answer(const QuerySource& src, absl::Span<const uint8_t> q, size_t max);

  ResolverConfig config_;
  std::unique_ptr<Upstream> upstream_;
  StubCallbacks cb_;
  int udp_ = -1, tcp_ = -1, udp6_ = -1, tcp6_ = -1, wake_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TaskResolver>> tasks_ ABSL_GUARDED_BY(mu_);
  StubCounters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace writ::dns
