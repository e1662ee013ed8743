// The stub resolver's sockets: UDP and TCP on one loopback address and port (and optionally the
// same port on an IPv6 address). A query is attributed to a task by `task_of` (writd: the kernel's
// record of the sending socket's cgroup; tests map every peer to a task), then answered by that
// task's TaskResolver. A peer no task claims gets REFUSED.
//
// One loop thread reads: UDP datagrams, and TCP connections without blocking (each bounded: 2 s to
// deliver its one query, at most kMaxConnections open; beyond, the oldest is closed). Answers are
// made by kWorkers worker threads from a bounded queue, so a slow upstream or a task that opens a
// connection and sends nothing delays no other task's query. A task's own queries are answered one
// at a time (a worker takes the first queued query whose task has none in service), so one task
// occupies at most one worker; it has at most kPerTaskInFlight queries queued, and what does not
// fit is dropped and counted (the client retries). Unattributed queries (answered REFUSED) share
// one such queue. Pins expire on the loop thread (checked at least once a second). Times are
// CLOCK_BOOTTIME as absl::Time (a wall-clock step moves no pin's expiry); the callbacks run on the
// loop or a worker thread and must not block for long.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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
  uint64_t refused = 0;       // not allowed, unknown task
  uint64_t malformed = 0;     // from the task
  uint64_t failed = 0;        // upstream, chain, pins
  uint64_t dropped = 0;       // queue full, or the asker's share of it: not answered (counted here)
  uint64_t tcp_timeouts = 0;  // connections closed before their query arrived whole
};

// The stub's clock: CLOCK_BOOTTIME as an absl::Time (the kernel's pin expiries are on it too).
absl::Time StubNow();

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
  // Pins a previous writd made for the task (read back from the kernel): kept and expired as if
  // this stub had made them.
  void RestorePins(const std::string& task, const std::vector<Pin>& pins);
  size_t PinCount(const std::string& task);
  StubCounters counters();

 private:
  static constexpr int kWorkers = 4;
  static constexpr size_t kQueueMax = 256;
  static constexpr size_t kPerTaskInFlight = 16;
  static constexpr size_t kMaxConnections = 64;

  struct Job {
    QuerySource src;
    std::optional<std::string> task;
    std::vector<uint8_t> query;
    int udp = -1;  // reply with sendto on this socket, or
    int tcp = -1;  // on this connection (the worker closes it)
  };
  struct Conn {
    int fd = -1;
    QuerySource src;
    absl::Time deadline;
    std::vector<uint8_t> buf;  // the 2-byte length, then the query
  };
  struct Entry {
    absl::Mutex mu;  // held while one of the task's queries is in service (upstream included)
    std::unique_ptr<TaskResolver> resolver ABSL_GUARDED_BY(mu);
    std::atomic<bool> removed{false};  // the task ended, or was added again: its pins all go
    std::atomic<size_t> pins{0};       // the resolver's pin count as last seen under `mu`
  };
  // Expires every pin of a removed entry, unless a query of it is in service (that query does it
  // when it is done): RemoveTask never waits for an upstream.
  void DropEntry(const std::string& task, const std::shared_ptr<Entry>& e, bool wait);
  // A job a worker may take: the first queued one whose task has no query in service (a task's
  // queries are answered one at a time, so a task occupies at most one worker).
  bool QueueReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(q_mu_);
  std::deque<Job>::iterator NextJob() ABSL_EXCLUSIVE_LOCKS_REQUIRED(q_mu_);

  void Loop();
  void Worker();
  void ReadUdp(int fd);
  void Accept(int fd);
  // false when the connection is done (its query queued, or closed).
  bool ReadConn(Conn& c);
  void Enqueue(Job job);
  void ExpirePins();
  std::vector<uint8_t> Answer(const Job& job, size_t max);

  ResolverConfig config_;
  std::unique_ptr<Upstream> upstream_;
  StubCallbacks cb_;
  int udp_ = -1, tcp_ = -1, udp6_ = -1, tcp6_ = -1, wake_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  std::vector<Conn> conns_;  // the loop thread's

  absl::Mutex mu_;  // never held across an upstream exchange
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> tasks_ ABSL_GUARDED_BY(mu_);
  StubCounters counters_ ABSL_GUARDED_BY(mu_);

  absl::Mutex q_mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(q_mu_);
  absl::flat_hash_map<std::string, size_t> in_flight_ ABSL_GUARDED_BY(q_mu_);  // by task ("": none)
  absl::flat_hash_set<std::string> busy_ ABSL_GUARDED_BY(q_mu_);  // tasks with a query in service
  bool q_stop_ ABSL_GUARDED_BY(q_mu_) = false;
};

}  // namespace writ::dns
