// The narrow interfaces between writd's parts (Envoy's pattern): the pipeline judges and enforces
// through TaskActions and emits through EventOutput; the control service acts on tasks through
// TaskControl. Each has one real implementation (Output; TaskLifecycle) and fakes in the unit tests
// (tests/unit/core_pipeline_test.cc, core_control_test.cc), so judging, enforcing and the control
// handlers' refusals are tested without root.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "api/framing.h"
#include "identity/task.h"
#include "writ/v1/event.pb.h"
#include "writ/v1/policy.pb.h"

namespace writ::daemon {

class EventOutput {
 public:
  virtual ~EventOutput() = default;
  // A synthetic event (not from the kernel): id, time, kernel time and kind set.
  virtual v1::Event NewEvent(const char* kind) = 0;
  // To every sink and `writ tail` subscriber, and (findings, actions, approvals) the journal.
  // `batch`: the pipeline's own records, handed to the sinks with the rest of the drained batch.
  // Every string of the event is redacted first (creds/redact.h), unless `redacted` says the caller
  // just did.
  virtual void Emit(v1::Event& ev, bool batch = false, bool redacted = false) = 0;
};

// Sees every event as it goes out, redacted, in the order the sinks get them (the approvals
// console). Called under the output's lock: it must only copy, and never emit.
class EventObserver {
 public:
  virtual ~EventObserver() = default;
  virtual void Observe(const v1::Event& ev) = 0;
};

// What the pipeline does to a task's processes and credentials when it judges.
class TaskActions {
 public:
  virtual ~TaskActions() = default;
  // One process, pinned to (pid, start time) so a reused pid is never hit: SIGSTOP, SIGCONT,
  // SIGKILL. NotFound when the process is gone.
  virtual absl::Status Signal(uint32_t pid, uint64_t start_ns, int sig) = 0;
  // Every process of the task, now, with no event of its own (a kill response's `action` event
  // follows from RunResponses): the acting process's parent must not run its next command first.
  virtual absl::Status KillNow(identity::Task& task) = 0;
  // Freezes (or thaws) the task and says so in an `action` event; false when it failed.
  virtual bool Freeze(identity::Task& task, bool frozen, const v1::Event* cause,
                      const std::string& reason) = 0;
  // The task's credentials are refused from now on, in memory (the durable record and its events
  // follow from RunResponses, after the violating event).
  virtual void MarkRevoked(const identity::Task& task) = 0;
  // A rule's responses (kill or freeze, then revoke) with their `action` events.
  virtual void RunResponses(identity::Task& task, const v1::Event& cause,
                            const std::vector<std::string>& responses,
                            const std::string& reason) = 0;
};

// What the control service does to tasks, besides what the pipeline does.
class TaskControl : public TaskActions {
 public:
  // Slot, cgroup, kernel tables, registry entry and persisted record of a new task (`spec` is its
  // intent as written, kept for a restart). With `place` > 0 that process joins the task. Nothing
  // of it is left on error.
  virtual absl::Status Install(const std::shared_ptr<identity::Task>& task, const v1::Intent* spec,
                               pid_t place) = 0;
  // Moves one process into the task's cgroup.
  virtual absl::Status Place(const identity::Task& task, pid_t pid) = 0;
  // The launcher's command is about to run: the intent's credentials are issued (an error refuses
  // the start).
  virtual absl::Status OnStarted(const identity::Task& task, const api::PeerCred& launcher) = 0;
  // cgroup.kill of the task and its sub-agents, with `action` events; false when it failed.
  virtual bool Kill(identity::Task& task, const v1::Event* cause, const std::string& reason) = 0;
  // Revokes the task's credentials (an `action` event) and ends its sub-agents (they cannot outlive
  // the authority they were delegated).
  virtual void Revoke(identity::Task& task, uint64_t cause_ktime_ns, const std::string& reason) = 0;
  // From now on the kernel allows the task exactly this destination (an approved connect).
  virtual absl::Status GrantConnect(const identity::Task& task, const v1::Network& dst) = 0;
};

}  // namespace writ::daemon
