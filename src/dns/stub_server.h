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

struct StubCallbacks {
  std::function<std::optional<std::string>(const sockaddr_storage& peer)> task_of;
  std::function<void(const std::string& task, const Outcome&)> on_query;
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
  // Binds `addr` ("127.0.0.1:0" picks a free port) for UDP and TCP and starts the thread.
  absl::Status Start(const std::string& addr);
  void Stop();
  uint16_t port() const { return port_; }

  void AddTask(const std::string& task, NamePolicy policy);
  void RemoveTask(const std::string& task);  // its pins are reported expired
  size_t PinCount(const std::string& task);
  StubCounters counters();

 private:
  void Loop();
  void ServeUdp();
  void ServeTcp();
  std::vector<uint8_t> Answer(const sockaddr_storage& peer, absl::Span<const uint8_t> q,
                              size_t max);

  ResolverConfig config_;
  std::unique_ptr<Upstream> upstream_;
  StubCallbacks cb_;
  int udp_ = -1, tcp_ = -1, wake_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TaskResolver>> tasks_ ABSL_GUARDED_BY(mu_);
  StubCounters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace writ::dns
