// DNS egress (#17): writd's stub resolver wired to the kernel and to the tasks.
//
// The kernel sends every task's TCP and UDP to port 53 to the stub (bpf/writ_dns.bpf.h) and records
// which task's socket sent each packet to it (dns_peer_map, read from the sending socket's cgroup).
// For each query DnsEgress
//   - attributes it to a task by that record (never by the packet's own bytes);
//   - lets the task's TaskResolver judge the name against the intent (network.dns, or the names of
//     its connect rules), ask upstream and pin the answer;
//   - writes each pinned address into the kernel's pin_map with the ports of the connect rules the
//     name matches, BEFORE the reply leaves (the task's connect that follows is decided in the
//     kernel, with no userspace round trip), and keeps the name for the connect events that use it
//     (network.host);
//   - emits a `dns` event (a violation with a finding when the name is refused or the query looks
//     like exfiltration).
// Expired pins are removed from the kernel by the stub's thread; the kernel checks the expiry too.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "bpf/loader.h"
#include "daemon/config.h"
#include "daemon/seams.h"
#include "dns/stub_server.h"
#include "identity/task.h"

namespace writ::daemon {

struct DnsCounters {
  uint64_t queries = 0;
  uint64_t allowed = 0;
  uint64_t refused = 0;       // names the intent does not allow, and queries no task sent
  uint64_t malformed = 0;     // from the task
  uint64_t failed = 0;        // upstream, chain, pin table full
  uint64_t unattributed = 0;  // no task's socket sent it (refused)
  uint64_t pins_written = 0;
  uint64_t pin_errors = 0;  // a kernel pin that could not be written (the address is not allowed)
  uint64_t findings = 0;
  uint64_t dropped = 0;       // the stub's queue was full, or the asker's share of it
  uint64_t tcp_timeouts = 0;  // connections closed before their query arrived whole
};

class DnsEgress {
 public:
  struct Deps {
    identity::TaskRegistry& registry;
    EventOutput& output;
  };
  // Binds the stub (cfg.dns_listen, and ::1 on the same port where the host has IPv6) and starts
  // its thread. Queries are refused until SetLoader.
  static absl::StatusOr<std::unique_ptr<DnsEgress>> Start(const Config& cfg, Deps deps);
  ~DnsEgress();

  // What the loader's programs redirect to.
  uint16_t port() const { return port_; }
  uint32_t addr4() const { return addr4_; }               // network byte order
  const uint8_t* addr6() const { return addr6_.data(); }  // all zero: no IPv6 stub

  void SetLoader(bpf::Loader* loader) { loader_.store(loader, std::memory_order_release); }

  // A task whose processes may now ask (installed, or restored: then the pins the previous writd
  // wrote for it are read back from the kernel, kept and expired), and one that ended.
  void AddTask(const identity::Task& task, bool restored = false);
  void RemoveTask(const identity::Task& task);

  // The name whose answer pinned `addr` for the task, if that pin was live at boot time
  // `ktime_ns` (what the kernel checked at the connect); "" otherwise.
  std::string NameFor(const std::string& task_id, int family, const uint8_t* addr,
                      uint64_t ktime_ns);

  DnsCounters counters();
  size_t PinCount(const std::string& task_id) { return stub_->PinCount(task_id); }

 private:
  DnsEgress(const Config& cfg, Deps deps);
  std::optional<std::string> TaskOf(const dns::QuerySource& src);
  void OnQuery(const std::string& task_id, const dns::Outcome& o, const dns::QuerySource& src);
  void OnExpired(const std::string& task_id, const std::vector<dns::Pin>& pins);

  const Config& cfg_;
  Deps d_;
  std::unique_ptr<dns::StubServer> stub_;
  std::atomic<bpf::Loader*> loader_{nullptr};
  uint16_t port_ = 0;
  uint32_t addr4_ = 0;
  std::array<uint8_t, 16> addr6_{};

  // The name that pinned an address last and, when another name pinned it before, that one: a
  // connect is named by the pin that was live at its kernel time (the pipeline may read the event
  // after a later answer for another name pinned the same address).
  struct Named {
    std::string name;
    uint64_t pinned_boot_ns = 0;  // 0: not known (read back from the kernel after a restart)
    uint64_t expires_boot_ns = 0;
    std::string prev_name;
    uint64_t prev_pinned_boot_ns = 0;
    uint64_t prev_expires_boot_ns = 0;
  };
  using AddrKey = std::pair<int, std::array<uint8_t, 16>>;
  absl::Mutex mu_;
  // Per task: address -> the name that pinned it last (kept past the pin's expiry, for the connect
  // events still in the ring buffer; bounded per task, dropped at task end).
  absl::flat_hash_map<std::string, std::map<AddrKey, Named>> names_ ABSL_GUARDED_BY(mu_);
  DnsCounters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace writ::daemon
