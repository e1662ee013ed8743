// Pipeline: what writd does with every ring-buffer record, on the pipeline thread:
//
//   record -> decode -> attribute (task, process table) -> judge (intent) -> enforce -> emit ->
//   responses
//
// It owns the decoder, the reused Event and the attribution cache, and the per-event counters; it
// acts on tasks only through TaskActions and emits only through EventOutput (seams.h), so judging
// and enforcing run in unit tests with fakes and records from tests/testlib/record_builder.h.
// Nothing here allocates, locks or logs per event once buffers have grown (docs/performance.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "creds/redact.h"
#include "daemon/approvals.h"
#include "daemon/seams.h"
#include "decode/decoder.h"
#include "identity/task.h"
#include "intent/intent.h"
#include "writ/event_kind.h"
#include "writ/v1/event.pb.h"

namespace writ::daemon {

class ToolCalls;  // tool_calls.h
class DnsEgress;  // dns_egress.h

// Kernel timestamp -> verdict latency of judged events: buckets of microseconds with upper bounds
// kBoundsUs (steps of 1.4-2x, so a percentile read off the histogram is within a bucket's width),
// the last one everything above 1 s. One writer (the pipeline thread), any readers.
class LatencyHistogram {
 public:
  static constexpr int64_t kBoundsUs[] = {
      1,     2,     3,     5,     7,     10,     15,     20,     30,     50,     70,     100,
      150,   200,   300,   500,   700,   1000,   1500,   2000,   3000,   5000,   7000,   10000,
      15000, 20000, 30000, 50000, 70000, 100000, 150000, 200000, 300000, 500000, 700000, 1000000};
  static constexpr int kBuckets = std::size(kBoundsUs) + 1;

  void Record(int64_t us);
  uint64_t bucket(int i) const { return buckets_[i].load(std::memory_order_relaxed); }
  uint64_t sum_us() const { return sum_us_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> buckets_[kBuckets] = {};
  std::atomic<uint64_t> sum_us_{0};
  std::atomic<uint64_t> count_{0};
};

// Written by the pipeline thread only (relaxed), read by status and metrics from any thread.
struct PipelineCounters {
  std::atomic<uint64_t> events_by_kind[kEventKinds] = {};  // attributed records
  std::atomic<uint64_t> unattributed{0};                   // a record of a task already removed
  std::atomic<uint64_t> decode_errors{0};
  std::atomic<uint64_t> violations{0};
  std::atomic<uint64_t> verdicts[4] = {};  // by intent::Verdict::Kind
  LatencyHistogram latency;
};

class Pipeline {
 public:
  struct Deps {
    identity::TaskRegistry& registry;
    identity::ProcessTable& procs;  // the pipeline thread's own (TaskLifecycle uses it there too)
    Approvals& approvals;
    TaskActions& actions;
    EventOutput& output;
    const creds::Redactor& redactor;
  };
  // `boot_to_unix_ns` converts kernel timestamps; `boot_tag` prefixes event ids.
  Pipeline(Deps deps, int64_t boot_to_unix_ns, std::string boot_tag);
  // MCP tool calls in flight (tool_calls.h): kernel events of their tasks name the call.
  void set_tool_calls(ToolCalls* t) { tool_calls_ = t; }
  // DNS egress: a connect to an address a DNS answer pinned names it (network.host).
  void set_dns(DnsEgress* d) { dns_ = d; }

  // Adoption candidates (records of processes in no task, adopt.h) go here; false when the record
  // did not decode. Without a handler they are counted as decode errors.
  void set_adopt_handler(std::function<bool(const void*, size_t)> handler) {
    adopt_handler_ = std::move(handler);
  }
  // writd's own unix sockets (control, Workload API): every task may connect to them (writd
  // authorizes each request); the kernel's unix table allows them for every task too.
  void set_own_sockets(std::vector<std::string> paths) { own_sockets_ = std::move(paths); }

  // One ring-buffer record, on the pipeline thread.
  void OnRecord(const void* data, size_t size);

  const PipelineCounters& counters() const { return counters_; }
  const decode::DecoderStats& decoder_stats() const { return decoder_.stats(); }

 private:
  std::shared_ptr<identity::Task> TaskFor(uint64_t cgroup_id);
  void ResolveScript(const decode::RecordInfo& info, v1::Process* p);
  // The dynamic loader run as a program: the program it will load (process.loaded), or unresolved.
  void ResolveLoaded(const decode::RecordInfo& info, v1::Process* p);
  // A unix connect: a relative name made absolute; writd's own sockets and names that reach nothing
  // decided here. True when the event is settled (not judged by the intent).
  bool SettleUnix(v1::Event& ev, const decode::RecordInfo& info);
  void Judge(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info);
  void JudgeDuringCall(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info,
                       const intent::CompiledIntent& during);
  void Enforce(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info,
               const intent::Verdict& v);
  void RequestApproval(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info,
                       const intent::Verdict& v);
  // An exec whose argv carried a credential: a `secret` event with its finding, after the exec's.
  void EmitSecretInArgv(const identity::Task& task, const v1::Event& exec,
                        const creds::RedactionReport& r);
  // Self-protection (kind "self"): judged by writ, not by the intent.
  void JudgeSelf(identity::Task& task, v1::Event& ev, const decode::RecordInfo& info);

  Deps d_;
  ToolCalls* tool_calls_ = nullptr;
  DnsEgress* dns_ = nullptr;
  const int64_t boot_to_unix_ns_;
  decode::Decoder decoder_;
  std::function<bool(const void*, size_t)> adopt_handler_;
  std::vector<std::string> own_sockets_;
  PipelineCounters counters_;

  v1::Event ev_;                                // reused for every record: no allocation once grown
  std::unique_ptr<v1::Agent> spare_agent_;      // ev_'s agent, kept across Decode (see OnRecord)
  std::shared_ptr<identity::Task> agent_task_;  // the task ev_'s kept agent was filled for
  std::shared_ptr<identity::Task> cached_task_;
  uint64_t cached_generation_ = ~0ull;
  // Responses decided while judging, run after the event is emitted (a SIEM sees cause before
  // effect).
  const std::vector<std::string>* deferred_responses_ = nullptr;
  std::vector<std::string> self_responses_;  // JudgeSelf's, when deferred_responses_ points at them
};

}  // namespace writ::daemon
