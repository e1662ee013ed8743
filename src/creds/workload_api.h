// SPIFFE Workload API (JWT-SVID subset) over a unix socket, with caller attestation.
//
// gRPC C++ does not expose SO_PEERCRED, so we own the accept loop: accept on the socket, read the
// peer's (pid, start time) and cgroup, ask the daemon which task that is, re-check the start time
// (a pid reused between the two reads fails the check), then hand the fd to gRPC with
// AddInsecureChannelFromFd. gRPC names such a connection's peer "fd:<n>", so each call finds its
// connection's attestation by fd number. Every call re-attests (same pid, same start time, lookup
// still yields a task) so a task that ended, or a connection whose original process died, gets
// PermissionDenied. Streams are capped per task and in total and the gRPC threads bounded, so no
// task can take the threads other tasks' calls need.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "creds/claims.h"
#include "creds/issuer.h"
#include "creds/keystore.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace writ::creds {

// Supplied by the daemon: which task (if any) is the process (pid, start_time) in cgroup
// `cgroup_path` (the cgroup2 path from /proc/<pid>/cgroup's "0::" line, e.g. "/writ/t-123").
using TaskLookup = std::function<std::optional<TaskClaims>(pid_t pid, uint64_t start_time,
                                                           const std::string& cgroup_path)>;

// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat).
absl::StatusOr<uint64_t> ReadProcStartTime(pid_t pid, const std::string& proc_root = "/proc");
// The cgroup2 path of `pid` (the "0::" line of /proc/<pid>/cgroup).
absl::StatusOr<std::string> ReadCgroupV2Path(pid_t pid, const std::string& proc_root = "/proc");

struct WorkloadApiOptions {
  std::string socket_path;   // e.g. <run_dir>/workload.sock
  std::string trust_domain;  // e.g. example.org
  TaskLookup lookup;
  absl::Duration bundle_poll = absl::Milliseconds(500);
  std::string proc_root = "/proc";  // tests point this at a fake /proc (pid reuse, a vanished peer)
  // Larger requests get RESOURCE_EXHAUSTED before any handler runs (real ones are < 3 KiB: 8
  // audiences of at most 256 bytes, or one JWT to validate).
  int max_request_bytes = 64 * 1024;
  // Called after an SVID was minted for a caller (events).
  std::function<void(const TaskClaims&, const Svid&)> on_issued;
  // FetchJWTBundles is a server stream: each open one holds a gRPC thread until its client cancels.
  // Beyond these many open at once for one task, or for all tasks together, a new one is refused
  // with RESOURCE_EXHAUSTED (counted: WorkloadApiStats::streams_refused), so one task cannot take
  // every thread and other tasks keep getting SVIDs.
  int max_streams_per_task = 4;
  int max_streams_total = 32;
  // gRPC threads serving calls (the ResourceQuota's max threads, pollers included): the stream cap
  // plus room for unary calls (FetchJWTSVID, ValidateJWTSVID), which return at once. 0: streams +
  // 16. Past it gRPC itself answers RESOURCE_EXHAUSTED ("Server Threadpool Exhausted").
  int max_threads = 0;
};

// For `writ status` / metrics.
struct WorkloadApiStats {
  int64_t streams_open = 0;
  uint64_t streams_refused = 0;  // since start: per-task or total cap reached
};

class WorkloadApiServer {
 public:
  // `issuer` and `keys` must outlive the server.
  static absl::StatusOr<std::unique_ptr<WorkloadApiServer>> Start(WorkloadApiOptions options,
                                                                  Issuer* issuer, KeyStore* keys);
  ~WorkloadApiServer();
  void Stop();

  struct Attestation {
    pid_t pid = 0;
    uint64_t start_time = 0;
  };
  // Re-attests the connection behind a gRPC peer string ("fd:N"). Public for the service
  // implementation.
  absl::StatusOr<TaskClaims> Attest(const std::string& peer) const;
  bool stopping() const { return stopping_.load(); }

  // A FetchJWTBundles stream of task `task_id` holding its place under the caps until destroyed.
  class StreamSlot {
   public:
    StreamSlot(WorkloadApiServer* owner, std::string task_id)
        : owner_(owner), task_id_(std::move(task_id)) {}
    StreamSlot(const StreamSlot&) = delete;
    StreamSlot& operator=(const StreamSlot&) = delete;
    ~StreamSlot() { owner_->ReleaseStream(task_id_); }

   private:
    WorkloadApiServer* owner_;
    std::string task_id_;
  };
  // A slot for one more stream of `task_id`, or RESOURCE_EXHAUSTED naming the cap (counted).
  absl::StatusOr<std::unique_ptr<StreamSlot>> AcquireStream(const std::string& task_id);
  WorkloadApiStats stats() const;

 private:
  // Out of line: grpc types are incomplete here.
  explicit WorkloadApiServer(WorkloadApiOptions o);
  void AcceptLoop();
  void ReleaseStream(const std::string& task_id);

  const WorkloadApiOptions options_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  // fd number -> who connected on it. Written before gRPC sees the fd and overwritten when the
  // kernel reuses the number for a new connection. gRPC closes the fd only when the transport is
  // destroyed, which (as far as gRPC 1.51's ref counting goes) is after its last call; every call
  // also re-checks the pid's start time, so a mix-up needs a reused fd number *and* a live call on
  // a dead transport.
  absl::flat_hash_map<int, Attestation> conns_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex streams_mu_;
  absl::flat_hash_map<std::string, int> streams_ ABSL_GUARDED_BY(streams_mu_);  // task id -> open
  int64_t streams_open_ ABSL_GUARDED_BY(streams_mu_) = 0;
  std::atomic<uint64_t> streams_refused_{0};
  std::atomic<int64_t> last_refusal_log_ns_{0};  // refusals are logged at most every 10 s
};

}  // namespace writ::creds
