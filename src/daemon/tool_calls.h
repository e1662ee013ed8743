// ToolCalls: the MCP tool calls of tasks started with a gateway (`writ run --mcp`), as their
// launcher reports them over the connection that created the task (ControlService checks that;
// nothing from inside a task is believed).
//
//   start  judged against the intent's `tools:` (intent/tools.h): allow (the call is in flight from
//          now: kernel events of the task carry it), deny (a tool_call event, status denied), or
//          needs_approval (held: an approval_request bound to the exact call; the launcher polls)
//   end    the call's answer: its tool_call event is emitted once the pipeline has drained every
//          record up to the answer, so it counts the violations the call caused
//   list   a tools/list answer: the names the client may see (the rest are hidden), a tool_list
//   event
//
// Correlation (pipeline thread): a kernel event of the task whose kernel time falls inside exactly
// one call's [start, answer] names that call (tool.name, tool.call_id); inside several it says how
// many and lists them, never guessing. Thread-safe: control threads report, the pipeline annotates.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/approvals.h"
#include "daemon/seams.h"
#include "identity/task.h"
#include "writ/v1/api.pb.h"

namespace writ::creds {
class Redactor;
}
namespace writ::intent {
class CompiledIntent;
}

namespace writ::daemon {

// Bytes of a call's arguments kept in its tool_call event (after redaction).
inline constexpr size_t kToolArgumentsCap = 4096;

class ToolCalls {
 public:
  struct Deps {
    identity::TaskRegistry& registry;
    Approvals& approvals;
    EventOutput& output;
    const creds::Redactor* redactor = nullptr;  // nullptr: the built-in rules
  };
  explicit ToolCalls(Deps deps) : d_(deps) {}

  // A report of the launcher of `task` (the caller checked it is).
  v1::ToolVerdict Report(identity::Task& task, const v1::ToolCallReport& r);
  // An approval of a held call was decided (a control thread) or expired (`approved` false).
  void Decided(const ApprovalRequest& r, bool approved, const std::string& by);

  // Pipeline thread, per kernel event of a task: is any call registered at all (one relaxed load)?
  bool active() const { return registered_.load(std::memory_order_relaxed) > 0; }
  // Fills ev->tool from the calls of `task` in flight at ev->ktime_ns(); returns how many. With
  // exactly one, *during is its tool's `tools.during` rules (nullptr when none).
  int Annotate(const identity::Task& task, v1::Event* ev,
               std::shared_ptr<const intent::CompiledIntent>* during = nullptr);
  // A violation of `task` that Annotate tied to exactly one call: counted on that call.
  void NoteViolation(const identity::Task& task, const v1::Event& ev);
  // Pipeline thread, between drains: emits the tool_call events of answered calls whose records
  // have all been drained (answered before the previous call of this), and of calls of ended tasks.
  void Housekeeping();

  struct Counters {
    std::atomic<uint64_t> calls{0}, denied{0}, held{0}, reports_refused{0};
  };
  const Counters& counters() const { return counters_; }
  void NoteRefused() { counters_.reports_refused++; }

 private:
  struct Call {
    std::string task_id;
    v1::Agent agent;  // the task's identity, kept: the call's event may follow the task's end
    std::string call_id;
    std::string name;
    std::string arguments;  // redacted, capped
    bool arguments_truncated = false;
    uint64_t arguments_bytes = 0;
    std::string arguments_sha256;
    std::string rule;
    std::shared_ptr<const intent::CompiledIntent> during;  // tools.during for this tool
    int64_t start_ktime = 0;
    int64_t end_ktime = 0;  // 0: in flight
    std::string status, error;
    uint64_t duration_us = 0;
    uint32_t violations = 0;
    std::vector<std::string> violation_ids;
    int answered_tick = -1;  // Housekeeping tick that first saw it answered
  };
  struct Held {
    Call call;
    std::optional<bool> approved;  // decided
    std::string by;
  };

  v1::ToolVerdict Start(identity::Task& task, const v1::ToolCallReport& r);
  v1::ToolVerdict End(identity::Task& task, const v1::ToolCallReport& r);
  v1::ToolVerdict Poll(identity::Task& task, const v1::ToolCallReport& r);
  v1::ToolVerdict List(identity::Task& task, const v1::ToolCallReport& r);
  Call NewCall(const identity::Task& task, const v1::ToolCallReport& r) const;
  void Register(identity::Task& task, Call c);
  void EmitCall(const identity::Task* task, const Call& c);
  v1::Event CallEvent(const identity::Task* task, const Call& c, const char* kind);

  Deps d_;
  Counters counters_;
  std::atomic<int64_t> registered_{0};
  int tick_ = 0;  // pipeline thread only
  absl::Mutex mu_;
  // In flight and answered-but-not-yet-emitted calls, by task id.
  absl::flat_hash_map<std::string, std::deque<Call>> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);  // by approval id
};

}  // namespace writ::daemon
